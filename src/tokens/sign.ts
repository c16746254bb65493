/** HS256 compact-JWS signing for the tokens the gateway issues and the assertions it forwards. */
import { encodeBase64Url } from "./base64url";

const encoder = new TextEncoder();

/** Header fields the gateway sets on what it signs. */
export interface SignHeader {
  kid?: string;
  typ?: string;
}

/** Signs `claims` as an HS256 compact JWS with `key`; header `{"typ","alg","kid"}` in the documentation's order. */
export async function signJwt(claims: object, key: CryptoKey, header: SignHeader = {}): Promise<string> {
  const protectedHeader = encodeBase64Url(
    JSON.stringify({ typ: header.typ ?? "JWT", alg: "HS256", ...(header.kid ? { kid: header.kid } : {}) }),
  );
  const signingInput = `${protectedHeader}.${encodeBase64Url(JSON.stringify(claims))}`;
  const signature = await crypto.subtle.sign("HMAC", key, encoder.encode(signingInput));
  return `${signingInput}.${encodeBase64Url(signature)}`;
}
