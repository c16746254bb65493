/**
 * Bench-only reference (`npm run bench`, `npm run bench:floor`): a forwarding Worker that does, natively and with no
 * policy logic, the per-request work the gateway's contract requires, in cumulative steps (`X-Floor-Step`; all four
 * without it): 1 `token` the bearer token's HS256 signature checked (a byte-identical repeat of the last token that
 * verified, compared in constant time and not yet expired, is not HMAC'd again, as the gateway's verifier does), 401
 * otherwise; 2 `headers` the client's headers copied into a record plus the nine headers the gateway adds;
 * 3 `deadline` the origin deadline (one timer, a cancel signal) and a request id drawn from the CSPRNG, stamped on the
 * response; 4 `assertion` `X-Gateway-Assertion` signed with the gateway's own `signJws` and the key its `ASSERTION_ALG`
 * picks (the origin verifies it as it verifies the gateway's). What the gateway costs beyond step 4 is its own JavaScript: parsing, policy, caches,
 * logging, metrics.
 */
import { parseConfig, type Bindings } from "../../src/config";
import { traceContext, uuidFrom } from "../../src/http/trace";
import { importAssertionKeys } from "../../src/tokens/assertion-keys";
import { decodeBase64Url, decodeBase64UrlText } from "../../src/tokens/base64url";
import { signJws, type JwsSigner } from "../../src/tokens/sign";
import { assertionClaims, MEMBER } from "../lib/member";

/** The gateway's own settings (`ORIGIN_URL`, `JWT_SECRET`, the assertion keys). */
type FloorEnv = Bindings & { ORIGIN_URL: string; JWT_SECRET: string };

const ALL_STEPS = 4;
const TOKEN_ID = "0f8a7c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b";
const encoder = new TextEncoder();
const keys = new Map<string, Promise<CryptoKey>>();

/** The last token whose signature verified: its signing input, signature bytes and `exp`. */
let verified: { signingInput: string; signature: Uint8Array; exp: number } | undefined;
/** The assertion's signer, imported once per isolate. */
let signer: JwsSigner | undefined;

/** The nine headers the gateway adds besides the assertion (values shaped like the gateway's). */
const ADDED: [string, string][] = [
  ["x-member-entity-id", String(MEMBER.memberEntityId)],
  ["x-member-entity-identifier", MEMBER.memberEntityIdentifier],
  ["x-organisation-entity-identifier", MEMBER.organisationEntityIdentifier],
  ["x-auth-scope", MEMBER.scope],
  ["x-auth-token-id", TOKEN_ID],
  ["x-auth-secret-type", "fixed"],
  ["x-forwarded-proto", "http"],
  ["x-forwarded-host", "127.0.0.1"],
  ["forwarded", "host=127.0.0.1;proto=http"],
];

/** An HMAC-SHA-256 key of `secret`, imported once per isolate. */
function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
    keys.set(secret, key);
  }
  return key;
}

/** True when `authorization` carries a bearer token signed under `secret` whose `exp` is ahead. */
async function tokenAccepted(authorization: string | null, secret: string): Promise<boolean> {
  const token = authorization?.startsWith("Bearer ") ? authorization.slice(7) : "";
  const dot = token.lastIndexOf(".");
  if (dot < 0) return false;
  const signingInput = token.slice(0, dot);
  const signature = encoder.encode(token.slice(dot + 1));
  const now = Date.now() / 1000;
  if (
    verified?.signingInput === signingInput &&
    verified.signature.byteLength === signature.byteLength &&
    crypto.subtle.timingSafeEqual(verified.signature, signature)
  )
    return verified.exp > now;
  try {
    const bytes = decodeBase64Url(token.slice(dot + 1));
    if (!(await crypto.subtle.verify("HMAC", await hmacKey(secret), bytes, encoder.encode(signingInput)))) return false;
    const { exp } = JSON.parse(decodeBase64UrlText(signingInput.slice(signingInput.indexOf(".") + 1)));
    verified = { signingInput, signature, exp: Number(exp) };
    return verified.exp > now;
  } catch {
    return false;
  }
}

export default {
  async fetch(request: Request, env: FloorEnv): Promise<Response> {
    const step = Number(request.headers.get("x-floor-step") ?? ALL_STEPS);
    if (step >= 1 && !(await tokenAccepted(request.headers.get("authorization"), env.JWT_SECRET)))
      return new Response(null, { status: 401 });
    const url = request.url;
    const path = url.slice(url.indexOf("/", url.indexOf("//") + 2));
    const headers: Record<string, string> = Object.create(null);
    for (const [name, value] of request.headers)
      if (name !== "authorization" && name !== "host" && name !== "x-floor-step") headers[name] = value;
    if (step >= 2) for (const [name, value] of ADDED) headers[name] = value;
    let requestId = "";
    if (step >= 3) {
      const random = crypto.getRandomValues(new Uint8Array(40));
      requestId = uuidFrom(random.subarray(0, 16));
      headers["x-request-id"] = requestId;
      headers.traceparent = traceContext(null, random.subarray(16)).traceparent;
    }
    if (step >= 4) {
      const claims = assertionClaims(request.method, path, requestId, TOKEN_ID, Math.floor(Date.now() / 1000));
      signer ??= (await importAssertionKeys(parseConfig(env), hmacKey)).signer;
      headers["x-gateway-assertion"] = await signJws(claims, signer, "gridgate-assertion+jwt");
    }
    const init: RequestInit = { method: request.method, headers, body: request.body, redirect: "manual" };
    let response: Response;
    if (step >= 3) {
      const cancel = new AbortController();
      init.signal = cancel.signal;
      let timer: ReturnType<typeof setTimeout> | null = null;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("deadline")), 30_000);
      });
      try {
        response = await Promise.race([fetch(env.ORIGIN_URL + path, init), deadline]);
      } finally {
        if (timer !== null) clearTimeout(timer);
      }
    } else {
      response = await fetch(env.ORIGIN_URL + path, init);
    }
    const out = new Response(response.body, response);
    if (step >= 3) out.headers.set("X-Request-Id", requestId);
    return out;
  },
};
