/** Dynamic secrets: generation, and AES-256-GCM sealing at rest under `SECRETS_KEY`. */
import { encodeBase64Url } from "../tokens/base64url";

/** Where a sealed secret belongs; bound into the ciphertext as additional authenticated data. */
export interface SecretOwner {
  organisation: string;
  kid: string;
}

/** Version tag of the sealed format: `v1.` + base64url(12-byte IV ‖ ciphertext ‖ 16-byte tag). */
const FORMAT = "v1.";
const IV_BYTES = 12;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
/** Imports the raw `SECRETS_KEY` bytes as the AES-GCM key that seals dynamic secrets. */
export function importSealingKey(raw: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
}

function additionalData(owner: SecretOwner): Uint8Array {
  return encoder.encode(`gridgate dynamic secret\u0000${owner.organisation}\u0000${owner.kid}`);
}

/** A new secret value: 32 random bytes as unpadded base64url (43 characters). */
export function generateSecret(): string {
  return encodeBase64Url(crypto.getRandomValues(new Uint8Array(32)));
}

/** A new key id: `ds_` and 12 random bytes as base64url; a valid JWS `kid` and header value. */
export function generateKid(): string {
  return `ds_${encodeBase64Url(crypto.getRandomValues(new Uint8Array(12)))}`;
}

/** Encrypts `secret` for storage; the result only opens for the same organisation and kid. */
export async function sealSecret(key: CryptoKey, owner: SecretOwner, secret: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const ciphertext = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: additionalData(owner) },
    key,
    encoder.encode(secret),
  );
  const sealed = new Uint8Array(IV_BYTES + ciphertext.byteLength);
  sealed.set(iv);
  sealed.set(new Uint8Array(ciphertext), IV_BYTES);
  return FORMAT + encodeBase64Url(sealed);
}

/** Decrypts what {@link sealSecret} produced; throws when the key, organisation or kid differ. */
export async function openSecret(key: CryptoKey, owner: SecretOwner, sealed: string): Promise<string> {
  if (!sealed.startsWith(FORMAT)) throw new Error("unknown sealed-secret format");
  const bytes = Uint8Array.fromBase64(sealed.slice(FORMAT.length), { alphabet: "base64url" });
  const plaintext = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: bytes.subarray(0, IV_BYTES), additionalData: additionalData(owner) },
    key,
    bytes.subarray(IV_BYTES),
  );
  return decoder.decode(plaintext);
}

/** The HS256 verification key of a dynamic secret: the UTF-8 bytes of its value, as integrators sign. */
export function dynamicHmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
}
