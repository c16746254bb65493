/** The one translation of refusals into HTTP: statuses and titles, RFC 6750 challenges, RFC 9457 problem+json. */
import { ConfigError } from "../config";
import { GatewayError, refusalOf, type ProblemCode } from "../gateway-error";
import type { Logger } from "../log";

/** Status and title of one problem code. */
export interface ProblemSpec {
  status: number;
  title: string;
}

/** The HTTP answer of every {@link ProblemCode}. */
export const PROBLEMS: Record<ProblemCode, ProblemSpec> = {
  invalid_request: { status: 400, title: "Malformed request" },
  ambiguous_path: { status: 400, title: "Ambiguous request path" },
  payload_too_large: { status: 413, title: "Request body too large" },
  unsupported_media_type: { status: 415, title: "Unsupported content type" },
  invalid_credentials: { status: 401, title: "Invalid credentials" },
  account_suspended: { status: 403, title: "Account suspended" },
  plan_not_eligible: { status: 403, title: "Plan not eligible for API access" },
  domain_required: { status: 409, title: "Domain required" },
  sso_required: { status: 403, title: "Single sign-on required" },
  rate_limited: { status: 429, title: "Too many requests" },
  missing_token: { status: 401, title: "Authentication required" },
  invalid_token: { status: 401, title: "Invalid access token" },
  basic_not_supported: { status: 401, title: "HTTP Basic authentication is not supported" },
  insufficient_scope: { status: 403, title: "Insufficient scope" },
  origin_not_allowed: { status: 403, title: "Origin not allowed" },
  invalid_grant: { status: 400, title: "Invalid refresh token" },
  not_found: { status: 404, title: "Not found" },
  secret_limit_reached: { status: 409, title: "Too many live secrets" },
  method_not_allowed: { status: 405, title: "Method not allowed" },
  origin_unreachable: { status: 502, title: "Origin unreachable" },
  origin_timeout: { status: 504, title: "Origin timed out" },
  temporarily_unavailable: { status: 503, title: "Temporarily unavailable" },
  internal: { status: 500, title: "Internal error" },
};

/** A handler for the methods a route does not serve: 405 `method_not_allowed` with `Allow: <allow>`. */
export function methodNotAllowed(allow: string): () => never {
  return () => {
    throw new GatewayError("method_not_allowed", `Use ${allow}.`, { headers: { Allow: allow } });
  };
}

const REALM = 'realm="api"';

/** An RFC 6750 §3 quoted-string value: printable ASCII without `"` and `\`, whatever went in. */
function quoted(value: string): string {
  return `"${value.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, "")}"`;
}

/** RFC 6750 §3 challenge for a refusal, or undefined where none belongs; every 401 has one (RFC 9110 §11.6.1). */
function challenge(error: GatewayError): string | undefined {
  switch (error.code) {
    case "missing_token":
    case "basic_not_supported":
    case "invalid_credentials":
      return `Bearer ${REALM}`;
    case "invalid_token":
      return `Bearer ${REALM}, error="invalid_token", error_description=${quoted(error.message)}`;
    case "insufficient_scope":
      return `Bearer ${REALM}, error="insufficient_scope", scope=${quoted(error.options.requiredScope ?? "")}`;
    default:
      return undefined;
  }
}

/** Builds the problem+json response for `error`; the single place where refusals become HTTP. */
export function problemResponse(error: GatewayError, requestId: string): Response {
  const { status, title } = PROBLEMS[error.code];
  const headers = new Headers({
    "Content-Type": "application/problem+json",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    Vary: "Origin",
    "X-Request-Id": requestId,
    ...error.options.headers,
  });
  const wwwAuthenticate = challenge(error);
  if (wwwAuthenticate) headers.set("WWW-Authenticate", wwwAuthenticate);
  if (error.options.retryAfter !== undefined)
    headers.set("Retry-After", String(Math.max(1, Math.ceil(error.options.retryAfter))));
  const body = {
    type: `urn:gridgate:problem:${error.code}`,
    title,
    status,
    detail: error.message,
    code: error.code,
    request_id: requestId,
  };
  return new Response(JSON.stringify(body), { status, headers });
}

/** Known refusals as they are, everything else an opaque 500 logged (on `log`) with the request id. */
export function errorResponse(thrown: unknown, requestId: string, log: Logger): Response {
  const err = refusalOf(thrown) ?? thrown;
  if (err instanceof GatewayError) {
    const { dependency, error } = (err.cause ?? {}) as { dependency?: string; error?: unknown };
    if (err.code === "temporarily_unavailable" && dependency !== undefined)
      log.error("dependency_unavailable", { dependency, error: error === undefined ? undefined : String(error) });
    return problemResponse(err, requestId);
  }
  const kind = err instanceof ConfigError ? "misconfigured" : "unhandled";
  log.error(kind, { error: String(err), stack: err instanceof Error ? err.stack : undefined });
  const detail =
    err instanceof ConfigError ? "The gateway is misconfigured; the operator has been told." : "Unexpected error.";
  return problemResponse(new GatewayError("internal", detail), requestId);
}
