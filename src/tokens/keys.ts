/** HMAC keys imported once per isolate: the fixed signing ring and the assertion key. */
import type { Config } from "../config";
import { encodeBase64Url } from "./base64url";

/** One HS256 key and the `kid` that names it in JWS headers. */
export interface SigningKey {
  kid: string;
  key: CryptoKey;
}

/** The fixed-secret keys: `current` signs, `all` (current first) verifies. */
export interface FixedKeyRing {
  current: SigningKey;
  all: readonly SigningKey[];
}

const encoder = new TextEncoder();
const imported = new Map<string, Promise<CryptoKey>>();
const rings = new WeakMap<Config, Promise<FixedKeyRing>>();

/** Imports `secret` as an HS256 key, once per isolate per distinct secret. */
export function hmacKey(secret: string | Uint8Array): Promise<CryptoKey> {
  const cacheKey = typeof secret === "string" ? secret : encodeBase64Url(secret);
  let key = imported.get(cacheKey);
  if (!key) {
    const raw = typeof secret === "string" ? encoder.encode(secret) : secret;
    key = crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    imported.set(cacheKey, key);
  }
  return key;
}

/**
 * Derives the public `kid` of a fixed secret: a truncated HMAC of a constant under the secret,
 * so it names the secret without revealing anything about it.
 */
export async function fixedKid(key: CryptoKey): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode("gridgate fixed-secret key id"));
  return encodeBase64Url(new Uint8Array(mac, 0, 9));
}

async function signingKey(secret: string): Promise<SigningKey> {
  const key = await hmacKey(secret);
  return { kid: await fixedKid(key), key };
}

async function buildRing(config: Config): Promise<FixedKeyRing> {
  const current = await signingKey(config.jwtSecret);
  const previous = config.jwtSecretPrevious ? await signingKey(config.jwtSecretPrevious) : undefined;
  return { current, all: previous ? [current, previous] : [current] };
}

/** The fixed key ring of `config`, built on first use and cached for the isolate's life. */
export function fixedKeyRing(config: Config): Promise<FixedKeyRing> {
  let ring = rings.get(config);
  if (!ring) {
    ring = buildRing(config);
    rings.set(config, ring);
  }
  return ring;
}
