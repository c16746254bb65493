/** CORS for browser apps, with the gateway as the one authority: it answers preflights and owns every `Access-Control-*` header (docs/browser-apps.md). */
import type { CorsSettings } from "../config";
import { GatewayError } from "../gateway-error";
import { varyOnOrigin } from "./gateway-made";

const ALLOW_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE";
const EXPOSE_HEADERS = "WWW-Authenticate, X-Request-Id, Retry-After, RateLimit, RateLimit-Policy";
const PREFLIGHT_MAX_AGE = "600";

/** The request's `Origin` when it is on `CORS_ORIGINS`, else undefined (no `Origin`, another one, or CORS off). */
export function allowedOrigin(request: Request, settings: CorsSettings): string | undefined {
  const origin = request.headers.get("Origin");
  return origin !== null && settings.origins.has(origin) ? origin : undefined;
}

/** The answer to a preflight: 204 with the policy for an allowed origin, else 403 (thrown); undefined for others. */
export function preflightAnswer(request: Request, settings: CorsSettings): Response | undefined {
  if (request.method !== "OPTIONS" || !request.headers.has("Access-Control-Request-Method")) return undefined;
  const origin = allowedOrigin(request, settings);
  if (origin === undefined)
    throw new GatewayError("origin_not_allowed", "This origin is not allowed to call the gateway from a browser.");
  return new Response(null, {
    status: 204,
    headers: {
      "Access-Control-Allow-Origin": origin,
      "Access-Control-Allow-Credentials": "true",
      "Access-Control-Allow-Methods": ALLOW_METHODS,
      "Access-Control-Allow-Headers": settings.allowHeaders,
      "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
      Vary: "Origin",
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
    },
  });
}

/** `response` with the gateway's `Access-Control-*` headers in place of its own (docs/browser-apps.md § CORS). */
export function withCorsHeaders(request: Request, response: Response, settings: CorsSettings): Response {
  let answer = response;
  const drop = () => {
    const names = [...answer.headers.keys()].filter((name) => name.startsWith("access-control-"));
    for (const name of names) answer.headers.delete(name);
  };
  try {
    drop();
  } catch {
    answer = new Response(answer.body, answer);
    drop();
  }
  if (settings.origins.size > 0) varyOnOrigin(answer.headers);
  const origin = allowedOrigin(request, settings);
  if (origin !== undefined) {
    answer.headers.set("Access-Control-Allow-Origin", origin);
    answer.headers.set("Access-Control-Allow-Credentials", "true");
    answer.headers.set("Access-Control-Expose-Headers", EXPOSE_HEADERS);
  }
  return answer;
}
