/**
 * Bench-only reference (`npm run bench:floor`): a forwarding Worker that does, natively and with no policy logic,
 * the per-request work the gateway's contract requires, in cumulative steps chosen by the `X-Floor-Step` header:
 * 1 `headers` the client's headers copied into a record plus the nine headers the gateway adds; 2 `deadline` the
 * origin deadline (one timer, a cancel signal) and a request id drawn from the CSPRNG, stamped on the response;
 * 3 `assertion` `X-Gateway-Assertion` signed with the gateway's own `signJwt` (the origin verifies it as it
 * verifies the gateway's). A repeat token needs no HMAC of its own (src/tokens/verify.ts). What the
 * gateway costs beyond step 3 is its own JavaScript: parsing, policy, caches, logging, metrics.
 */
import { traceContext, uuidFrom } from "../../src/http/trace";
import { signJwt } from "../../src/tokens/sign";

const encoder = new TextEncoder();
let hmacKey: Promise<CryptoKey> | undefined;

/** The nine headers the gateway adds besides the assertion (values shaped like the gateway's). */
const ADDED: [string, string][] = [
  ["x-member-entity-id", "2549"],
  ["x-member-entity-identifier", "o6q2is"],
  ["x-organisation-entity-identifier", "m7l9hw"],
  ["x-auth-scope", "architect"],
  ["x-auth-token-id", "0f8a7c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b"],
  ["x-auth-secret-type", "fixed"],
  ["x-forwarded-proto", "http"],
  ["x-forwarded-host", "127.0.0.1"],
  ["forwarded", "host=127.0.0.1;proto=http"],
];

export default {
  async fetch(request: Request, env: { ORIGIN_URL: string; ASSERTION_SECRET: string }): Promise<Response> {
    const step = Number(request.headers.get("x-floor-step") ?? 0);
    const url = request.url;
    const path = url.slice(url.indexOf("/", url.indexOf("//") + 2));
    const headers: Record<string, string> = Object.create(null);
    for (const [name, value] of request.headers)
      if (name !== "authorization" && name !== "host" && name !== "x-floor-step") headers[name] = value;
    if (step >= 1) for (const [name, value] of ADDED) headers[name] = value;
    let requestId = "";
    if (step >= 2) {
      const random = crypto.getRandomValues(new Uint8Array(40));
      requestId = uuidFrom(random.subarray(0, 16));
      headers["x-request-id"] = requestId;
      headers.traceparent = traceContext(null, random.subarray(16)).traceparent;
    }
    if (step >= 3) {
      const key = await (hmacKey ??= crypto.subtle.importKey(
        "raw",
        encoder.encode(env.ASSERTION_SECRET),
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["sign", "verify"],
      ));
      const now = Math.floor(Date.now() / 1000);
      const claims = {
        iss: "gridgate",
        aud: "origin",
        jti: requestId,
        iat: now,
        exp: now + 60,
        method: request.method,
        path,
        memberEntityId: 2549,
        memberEntityIdentifier: "o6q2is",
        organisationEntityIdentifier: "m7l9hw",
        scope: "architect",
        secretType: "fixed",
        tokenId: "0f8a7c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b",
      };
      headers["x-gateway-assertion"] = await signJwt(claims, key, { typ: "gridgate-assertion+jwt" });
    }
    const init: RequestInit = { method: request.method, headers, body: request.body, redirect: "manual" };
    let response: Response;
    if (step >= 2) {
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
    if (step >= 2) out.headers.set("X-Request-Id", requestId);
    return out;
  },
};
