/** HS256 compact-JWS signing for the tokens the gateway issues and the assertions it forwards. */
import { LruCache } from "../cache/lru";
import { encodeBase64Url } from "./base64url";

const encoder = new TextEncoder();

/** Header fields the gateway sets on what it signs. */
export interface SignHeader {
  kid?: string;
  typ?: string;
}

/** Encoded protected headers by `typ` and `kid`: the same few on almost every call (the assertion's above all). */
const encodedHeaders = new LruCache<string, string>({ maxEntries: 64 });

function encodedHeader(typ: string, kid: string | undefined): string {
  const cacheKey = `${typ} ${kid ?? ""}`;
  let encoded = encodedHeaders.get(cacheKey);
  if (encoded === undefined) {
    encoded = encodeBase64Url(JSON.stringify({ typ, alg: "HS256", ...(kid ? { kid } : {}) }));
    encodedHeaders.set(cacheKey, encoded);
  }
  return encoded;
}

/** Signs `claims` as an HS256 compact JWS with `key`; header `{"typ","alg","kid"}` in the documentation's order. */
export async function signJwt(claims: object, key: CryptoKey, header: SignHeader = {}): Promise<string> {
  const protectedHeader = encodedHeader(header.typ ?? "JWT", header.kid);
  const signingInput = `${protectedHeader}.${encodeBase64Url(JSON.stringify(claims))}`;
  const signature = await crypto.subtle.sign("HMAC", key, encoder.encode(signingInput));
  return `${signingInput}.${encodeBase64Url(signature)}`;
}
