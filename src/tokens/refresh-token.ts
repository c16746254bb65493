/** Opaque refresh tokens: generation, the strict format check, storage hashes, and successor sealing. */
import { sha256Hex } from "../digest";
import { encodeBase64Url } from "./base64url";

const REFRESH_TOKEN_PREFIX = "ggr_";
const RANDOM_BYTES = 32;
/** `ggr_` and 32 bytes of canonical base64url: the last of the 43 characters has its two unused bits zero. */
const REFRESH_TOKEN = /^ggr_[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;
const IV_BYTES = 12;
const SEAL_FORMAT = "v1.";
const SUCCESSOR_INFO = new TextEncoder().encode("gridgate refresh successor v1");
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** A new refresh token: the prefix and 256 bits from `crypto.getRandomValues`. */
export function generateRefreshToken(): string {
  return REFRESH_TOKEN_PREFIX + encodeBase64Url(crypto.getRandomValues(new Uint8Array(RANDOM_BYTES)));
}

/** True only for a string shaped exactly like a token from {@link generateRefreshToken}. */
export function isRefreshToken(value: string): boolean {
  return REFRESH_TOKEN.test(value);
}

/** Lower-case hex SHA-256 of a token: the only form in which a token is ever stored. */
export function refreshTokenHash(token: string): Promise<string> {
  return sha256Hex(token);
}

async function tokenKey(token: string): Promise<CryptoKey> {
  const secret = Uint8Array.fromBase64(token.slice(REFRESH_TOKEN_PREFIX.length), { alphabet: "base64url" });
  const material = await crypto.subtle.importKey("raw", secret, "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(), info: SUCCESSOR_INFO },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/** Encrypts `successor` under a key derived from the `presented` token it replaces, bound to its hash. */
export async function sealSuccessor(presented: string, presentedHash: string, successor: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const ciphertext = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: encoder.encode(presentedHash) },
    await tokenKey(presented),
    encoder.encode(successor),
  );
  const sealed = new Uint8Array(IV_BYTES + ciphertext.byteLength);
  sealed.set(iv);
  sealed.set(new Uint8Array(ciphertext), IV_BYTES);
  return SEAL_FORMAT + encodeBase64Url(sealed);
}

/** Recovers what {@link sealSuccessor} sealed; undefined when it does not open with this token. */
export async function openSuccessor(
  presented: string,
  presentedHash: string,
  sealed: string,
): Promise<string | undefined> {
  try {
    if (!sealed.startsWith(SEAL_FORMAT)) return undefined;
    const bytes = Uint8Array.fromBase64(sealed.slice(SEAL_FORMAT.length), { alphabet: "base64url" });
    const plaintext = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: bytes.subarray(0, IV_BYTES), additionalData: encoder.encode(presentedHash) },
      await tokenKey(presented),
      bytes.subarray(IV_BYTES),
    );
    const successor = decoder.decode(plaintext);
    return isRefreshToken(successor) ? successor : undefined;
  } catch {
    return undefined;
  }
}
