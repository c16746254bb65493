/** Compact-JWS signing: HS256 for the tokens the gateway issues, HS256, EdDSA or ES256 for the assertions it forwards. */
import { LruCache } from "../cache/lru";
import { encodeBase64Url } from "./base64url";

const encoder = new TextEncoder();

/** Header fields the gateway sets on what it signs. */
export interface SignHeader {
  kid?: string;
  typ?: string;
}

/** A key ready to sign: its JWS `alg`, `kid`, the WebCrypto key and the `sign` parameters (one object per key). */
export interface JwsSigner {
  alg: "HS256" | "EdDSA" | "ES256";
  kid: string;
  key: CryptoKey;
  params: string | SubtleCryptoSignAlgorithm;
}

const encodedHeaders = new LruCache<string, string>({ maxEntries: 64 });

function encodedHeader(alg: JwsSigner["alg"], typ: string, kid: string | undefined): string {
  const cacheKey = `${alg} ${typ} ${kid ?? ""}`;
  let encoded = encodedHeaders.get(cacheKey);
  if (encoded === undefined) {
    encoded = encodeBase64Url(JSON.stringify({ typ, alg, ...(kid ? { kid } : {}) }));
    encodedHeaders.set(cacheKey, encoded);
  }
  return encoded;
}

/** Signs `claims` as a compact JWS with `signer`; header `{"typ","alg","kid"}` in the documentation's order. */
export async function signJws(claims: object, signer: JwsSigner, typ: string): Promise<string> {
  const signingInput = `${encodedHeader(signer.alg, typ, signer.kid)}.${encodeBase64Url(JSON.stringify(claims))}`;
  const signature = await crypto.subtle.sign(signer.params, signer.key, encoder.encode(signingInput));
  return `${signingInput}.${encodeBase64Url(signature)}`;
}

/** Signs `claims` as an HS256 compact JWS with `key`; header `{"typ","alg","kid"}` in the documentation's order. */
export async function signJwt(claims: object, key: CryptoKey, header: SignHeader = {}): Promise<string> {
  const signingInput = `${encodedHeader("HS256", header.typ ?? "JWT", header.kid)}.${encodeBase64Url(JSON.stringify(claims))}`;
  const signature = await crypto.subtle.sign("HMAC", key, encoder.encode(signingInput));
  return `${signingInput}.${encodeBase64Url(signature)}`;
}
