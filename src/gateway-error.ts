/** The gateway's one error type: a closed `code` and a client-facing detail, thrown by every domain module. */

/** Every reason the gateway refuses a request. Closed on purpose: new failures get a code here. */
export type ProblemCode =
  | "invalid_request"
  | "ambiguous_path"
  | "payload_too_large"
  | "unsupported_media_type"
  | "invalid_credentials"
  | "account_suspended"
  | "plan_not_eligible"
  | "domain_required"
  | "sso_required"
  | "rate_limited"
  | "missing_token"
  | "invalid_token"
  | "basic_not_supported"
  | "insufficient_scope"
  | "origin_not_allowed"
  | "invalid_grant"
  | "not_found"
  | "secret_limit_reached"
  | "method_not_allowed"
  | "origin_unreachable"
  | "origin_timeout"
  | "temporarily_unavailable"
  | "internal";

/** What shapes the answer to a {@link GatewayError} beyond its code; HTTP decides what each means. */
export interface GatewayErrorOptions {
  requiredScope?: string;
  /** Seconds a client should wait before trying again. */
  retryAfter?: number;
  /** Extra response headers, e.g. `Allow` for `method_not_allowed`. */
  headers?: Record<string, string>;
  cause?: unknown;
}

/** A refusal with a closed `code`; the message is the client-facing `detail` and must hold no secrets. */
export class GatewayError extends Error {
  override name = "GatewayError";
  constructor(
    readonly code: ProblemCode,
    message: string,
    readonly options: GatewayErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
  }
}

/** The refusals given in more than one place, each with its one text. */
const REFUSALS = {
  invalidCredentials: { code: "invalid_credentials", detail: "The email, password or domain is incorrect." },
  domainRequired: {
    code: "domain_required",
    detail: "This account belongs to several organisations; add the organisation's domain.",
  },
  suspended: { code: "account_suspended", detail: "This account is suspended." },
  planNotEligible: { code: "plan_not_eligible", detail: "This organisation's plan does not include API access." },
  ssoRequired: {
    code: "sso_required",
    detail:
      "This organisation signs in with single sign-on: open GET /authenticate/sso/start?email=…&return_to=… in the browser.",
  },
  tooManyLogins: { code: "rate_limited", detail: "Too many login attempts; try again later." },
  invalidGrant: { code: "invalid_grant", detail: "The refresh token is invalid, expired or revoked; log in again." },
  malformedGrant: { code: "invalid_grant", detail: "The refresh token is malformed." },
  foreignMember: { code: "invalid_token", detail: "the token's member does not belong to its organisation" },
} as const satisfies Record<string, { code: ProblemCode; detail: string }>;

/** The name of a refusal in {@link REFUSALS}. */
export type Refusal = keyof typeof REFUSALS;

/** The {@link GatewayError} of a named refusal. */
export function refusal(name: Refusal, options?: GatewayErrorOptions): GatewayError {
  const { code, detail } = REFUSALS[name];
  return new GatewayError(code, detail, options);
}

/** A storage dependency the gateway may find unavailable; named in logs, never in the client's detail. */
export type Dependency = "d1" | "kv" | "r2" | "refresh_family" | "login_backoff" | "revocations" | "rate_limiter";

/** Seconds a client is asked to wait (`Retry-After`) after a dependency failed. */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

/** 503 `temporarily_unavailable` with `Retry-After`: nothing was decided (docs/operating.md § Failure policy). */
export function unavailable(dependency: Dependency, cause?: unknown): GatewayError {
  return new GatewayError("temporarily_unavailable", "The service is temporarily unavailable; try again shortly.", {
    retryAfter: UNAVAILABLE_RETRY_AFTER_SECONDS,
    cause: { dependency, error: cause },
  });
}

/** The refusal `err` is, or wraps as a `cause` (as drizzle's `DrizzleQueryError` does). */
export function refusalOf(err: unknown): GatewayError | undefined {
  for (let depth = 0; depth < 4 && err instanceof Error; depth++, err = err.cause) {
    if (err instanceof GatewayError) return err;
  }
  return undefined;
}
