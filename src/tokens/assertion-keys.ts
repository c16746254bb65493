/** The keys of `X-Gateway-Assertion`: the signer `ASSERTION_ALG` picks, and the JWKS of every `ASSERTION_KEYS` public key. */
import { ConfigError, type AssertionPrivateKey, type Config } from "../config";
import { encodeBase64Url } from "./base64url";
import type { JwsSigner } from "./sign";

/** How long an origin (or a cache between it and the gateway) may keep the JWKS, seconds. */
export const JWKS_MAX_AGE = 300;

const IMPORT_PARAMS: Record<AssertionPrivateKey["alg"], SubtleCryptoImportKeyAlgorithm> = {
  EdDSA: { name: "Ed25519" },
  ES256: { name: "ECDSA", namedCurve: "P-256" },
};

/** WebCrypto `sign` parameters per JWS `alg`, one object each for the isolate's life. */
export const SIGN_PARAMS: Record<JwsSigner["alg"], string | SubtleCryptoSignAlgorithm> = {
  HS256: "HMAC",
  EdDSA: "Ed25519",
  ES256: { name: "ECDSA", hash: "SHA-256" },
};

interface PublicJwk {
  kty: "OKP" | "EC";
  crv: "Ed25519" | "P-256";
  x: string;
  y?: string;
  kid: string;
  alg: AssertionPrivateKey["alg"];
  use: "sig";
}

interface Jwks {
  keys: readonly PublicJwk[];
  body: string;
  etag: string;
}

/** What the gateway signs assertions with and what it publishes, imported once per isolate. */
export interface AssertionKeySet {
  signer: JwsSigner;
  jwks: Jwks;
}

const encoder = new TextEncoder();

/** RFC 7638 thumbprint of a public key: SHA-256 of its required members in lexicographic order, base64url. */
async function thumbprint({ crv, kty, x, y }: Pick<PublicJwk, "crv" | "kty" | "x" | "y">): Promise<string> {
  const members = y === undefined ? { crv, kty, x } : { crv, kty, x, y };
  return encodeBase64Url(await crypto.subtle.digest("SHA-256", encoder.encode(JSON.stringify(members))));
}

async function importPrivateKey(
  { alg, pkcs8 }: AssertionPrivateKey,
  position: number,
): Promise<{ jwk: PublicJwk; key: CryptoKey }> {
  let exported: JsonWebKey;
  let key: CryptoKey;
  try {
    const extractable = await crypto.subtle.importKey("pkcs8", pkcs8, IMPORT_PARAMS[alg], true, ["sign"]);
    exported = (await crypto.subtle.exportKey("jwk", extractable)) as JsonWebKey;
    key = await crypto.subtle.importKey("pkcs8", pkcs8, IMPORT_PARAMS[alg], false, ["sign"]);
  } catch (error) {
    throw new ConfigError(`ASSERTION_KEYS key ${position} could not be imported: ${String(error)}`);
  }
  const publicPart =
    alg === "EdDSA"
      ? { kty: "OKP" as const, crv: "Ed25519" as const, x: exported.x! }
      : { kty: "EC" as const, crv: "P-256" as const, x: exported.x!, y: exported.y! };
  return { jwk: { ...publicPart, kid: await thumbprint(publicPart), alg, use: "sig" }, key };
}

async function assertionSecretKid(key: CryptoKey): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode("gridgate assertion key id"));
  return encodeBase64Url(new Uint8Array(mac, 0, 9));
}

/** Imports `ASSERTION_KEYS`, all published; the first of `ASSERTION_ALG` signs, or for HS256 `ASSERTION_SECRET`. */
export async function importAssertionKeys(
  config: Pick<Config, "assertionAlg" | "assertionKeys" | "assertionSecret">,
  hmacKey: (secret: string) => Promise<CryptoKey>,
): Promise<AssertionKeySet> {
  const keys: PublicJwk[] = [];
  let signer: JwsSigner | undefined;
  for (const [index, privateKey] of config.assertionKeys.entries()) {
    const { jwk, key } = await importPrivateKey(privateKey, index + 1);
    if (keys.some((listed) => listed.kid === jwk.kid)) continue;
    keys.push(jwk);
    if (signer === undefined && jwk.alg === config.assertionAlg)
      signer = { alg: jwk.alg, kid: jwk.kid, key, params: SIGN_PARAMS[jwk.alg] };
  }
  if (config.assertionAlg === "HS256") {
    const key = await hmacKey(config.assertionSecret!);
    signer = { alg: "HS256", kid: await assertionSecretKid(key), key, params: SIGN_PARAMS.HS256 };
  }
  if (signer === undefined) throw new ConfigError(`ASSERTION_KEYS holds no ${config.assertionAlg} key`);
  const body = JSON.stringify({ keys });
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(body)));
  return { signer, jwks: { keys, body, etag: `"${encodeBase64Url(digest.subarray(0, 16))}"` } };
}
