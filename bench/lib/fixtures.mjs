// The bench's secrets, seeded account, request and Node-side HS256 signing, shared by every bench tool and the soak.
import { createHmac, randomUUID } from "node:crypto";
import { SEED_PASSWORD } from "../../scripts/seed-data.ts";
import { assertionClaims } from "./member.ts";

export { MEMBER } from "./member.ts";

/** Bench-only secrets (≥ 32 bytes) of the gateway, and of the servers that share one with it, used nowhere else. */
export const SECRETS = {
  JWT_SECRET: "bench-jwt-secret-0123456789abcdef0123456789abcdef",
  PASSWORD_PEPPER: "bench-password-pepper-0123456789abcdef0123456789",
  ASSERTION_SECRET: "bench-assertion-secret-0123456789abcdef01234567",
  // An Ed25519 and a P-256 private key (PKCS#8): ASSERTION_ALG picks the one that signs.
  ASSERTION_KEYS: [
    "MC4CAQAwBQYDK2VwBCIEINXKKVoqERzRjNmj6RBYyU15BGAsiVATLitWFFM4WR37",
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgEzCFp9dC7C9IDBXBtEtd7mX8pLal5kQ3oBOfniCdzb-hRANCAAS-nAqUfGUKk0bE8_VU_zvwUEmJVPF1GzJ6xO_GIal39Rr0R1vBkneE7l78jfhPyjq7B7RIqxPQbXh2HbPslsUN",
  ].join(","),
  SECRETS_KEY: Buffer.alloc(32, 7).toString("base64url"),
};

/** The seeded account the bench tools log in as (docs/api.md § Seeded local accounts). */
export const SEED = { email: "architect@acme.example", password: SEED_PASSWORD };

/** The proxied request of every end-to-end measurement. */
export const API_PATH = "/grids/1";

const b64 = (value) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

/** An HS256 JWS of `claims` under `secret`, made in Node (independent of the gateway's code). */
export function signHs256(claims, secret, header = {}) {
  const input = `${b64({ alg: "HS256", typ: "JWT", ...header })}.${b64(claims)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

/** The `kid` of HS256 assertions under `ASSERTION_SECRET` (docs/origin-integration.md). */
const ASSERTION_SECRET_KID = createHmac("sha256", SECRETS.ASSERTION_SECRET)
  .update("gridgate assertion key id")
  .digest()
  .subarray(0, 9)
  .toString("base64url");

/** Signs an HS256 `X-Gateway-Assertion` in Node, for sending straight to an origin that checks it. */
export function assertionFor(method, path) {
  const claims = assertionClaims(method, path, randomUUID(), randomUUID(), Math.floor(Date.now() / 1000));
  return signHs256(claims, SECRETS.ASSERTION_SECRET, { typ: "gridgate-assertion+jwt", kid: ASSERTION_SECRET_KID });
}

/** `token` with one signature character flipped, mid-signature so the copy stays canonical base64url. */
export function tampered(token) {
  const at = token.length - 20;
  return token.slice(0, at) + (token[at] === "A" ? "B" : "A") + token.slice(at + 1);
}
