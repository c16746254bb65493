// The bench's secrets and Node-side HS256 signing (an X-Gateway-Assertion, any JWS), shared by the bench and the soak.
import { createHmac, randomUUID } from "node:crypto";

/** Secrets of the bench's gateway (and of its origin: ASSERTION_SECRET). */
export const SECRETS = {
  JWT_SECRET: "bench-jwt-secret-0123456789abcdef0123456789abcdef",
  PASSWORD_PEPPER: "bench-password-pepper-0123456789abcdef0123456789",
  ASSERTION_SECRET: "bench-assertion-secret-0123456789abcdef01234567",
  SECRETS_KEY: Buffer.alloc(32, 7).toString("base64url"),
};

const b64 = (value) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

/** An HS256 JWS of `claims` under `secret`, made in Node (independent of the gateway's code). */
export function signHs256(claims, secret, header = {}) {
  const input = `${b64({ alg: "HS256", typ: "JWT", ...header })}.${b64(claims)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

/** Signs an `X-Gateway-Assertion` in Node, for sending straight to an origin that checks it. */
export function assertionFor(method, path, issuer) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: issuer,
    aud: "origin",
    jti: randomUUID(),
    iat: now,
    exp: now + 60,
    method,
    path,
    memberEntityId: 2549,
    memberEntityIdentifier: "o6q2is",
    organisationEntityIdentifier: "m7l9hw",
    scope: "architect",
    secretType: "fixed",
    tokenId: randomUUID(),
  };
  return signHs256(claims, SECRETS.ASSERTION_SECRET, { typ: "gridgate-assertion+jwt" });
}
