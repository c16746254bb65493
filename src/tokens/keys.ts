/** Keys imported once per isolate: the fixed signing ring and the keys of `X-Gateway-Assertion`. */
import { LruCache } from "../cache/lru";
import type { Config, ConfigSource } from "../config";
import { importAssertionKeys, type AssertionKeySet } from "./assertion-keys";
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
const IMPORTED_KEYS_LIMIT = 8;

/** Imports `secret` as an HS256 key (no caching; see {@link KeyStore}). */
export function importHmacKey(secret: string | Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  const raw = typeof secret === "string" ? encoder.encode(secret) : secret;
  return crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

/** The public `kid` of a fixed secret: a truncated HMAC of a constant, naming the secret without revealing it. */
async function fixedKid(key: CryptoKey): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode("gridgate fixed-secret key id"));
  return encodeBase64Url(new Uint8Array(mac, 0, 9));
}

/** Keys imported on first use and kept for the isolate; never an import in progress (CONTRIBUTING.md § add a cache). */
export class KeyStore {
  private readonly imported = new LruCache<string, CryptoKey>({ maxEntries: IMPORTED_KEYS_LIMIT });
  private ring: FixedKeyRing | undefined;
  private assertion: AssertionKeySet | undefined;

  constructor(private readonly source: ConfigSource) {}

  async hmacKey(secret: string): Promise<CryptoKey> {
    const imported = this.imported.get(secret);
    if (imported) return imported;
    const key = await importHmacKey(secret);
    this.imported.set(secret, key);
    return key;
  }

  /** The fixed key ring (`JWT_SECRET`, then `JWT_SECRET_PREVIOUS`). */
  async fixedRing(): Promise<FixedKeyRing> {
    return (this.ring ??= await this.buildRing(this.source.config));
  }

  /** The fixed key ring once imported (the hot path reads it without waiting a turn), else undefined. */
  get importedRing(): FixedKeyRing | undefined {
    return this.ring;
  }

  /** What signs `X-Gateway-Assertion` and the JWKS the gateway publishes (`ASSERTION_ALG`, `ASSERTION_KEYS`, `ASSERTION_SECRET`). */
  async assertionKeys(): Promise<AssertionKeySet> {
    return (this.assertion ??= await importAssertionKeys(this.source.config, (secret) => this.hmacKey(secret)));
  }

  /** The assertion keys once imported (the hot path reads them without waiting a turn), else undefined. */
  get importedAssertionKeys(): AssertionKeySet | undefined {
    return this.assertion;
  }

  private async signingKey(secret: string): Promise<SigningKey> {
    const key = await this.hmacKey(secret);
    return { kid: await fixedKid(key), key };
  }

  private async buildRing({ jwtSecret, jwtSecretPrevious }: Config): Promise<FixedKeyRing> {
    const current = await this.signingKey(jwtSecret);
    const previous = jwtSecretPrevious ? await this.signingKey(jwtSecretPrevious) : undefined;
    return { current, all: previous ? [current, previous] : [current] };
  }
}
