/** Why a single sign-on failed: the audit trail's reason code and what the browser app is told (RFC 6749 §4.1.2.1). */
import { refusalOf } from "../gateway-error";

/** The reason codes of `sso.login.failure` (docs/sso.md § When a sign-in fails). */
export type SsoFailureReason =
  | "no_connection"
  | "connection_removed"
  | "idp_unavailable"
  | "idp_error"
  | "state_invalid"
  | "state_expired"
  | "browser_mismatch"
  | "response_invalid"
  | "code_rejected"
  | "id_token_invalid"
  | "email_unverified"
  | "email_domain"
  | "not_member"
  | "subject_mismatch"
  | "suspended"
  | "plan_not_eligible"
  | "storage_unavailable"
  | "server_error";

/** The `error` values the gateway sends back to the app (RFC 6749 §4.1.2.1 names). */
export type SsoErrorCode = "invalid_request" | "access_denied" | "server_error" | "temporarily_unavailable";

/** A failed sign-in; `message` is the `error_description` the app sees (never a secret), `cause` goes to the log. */
export class SsoFailure extends Error {
  override name = "SsoFailure";
  constructor(
    readonly reason: SsoFailureReason,
    readonly error: SsoErrorCode,
    description: string,
    /** For the log and the audit row's detail: what exactly failed (a library's message, the provider's error). */
    readonly why?: string,
  ) {
    super(description);
  }
}

/** A storage failure (a 503 `temporarily_unavailable` refusal) as the app sees it; undefined for anything else. */
export function storageFailure(error: unknown): SsoFailure | undefined {
  if (refusalOf(error)?.code !== "temporarily_unavailable") return undefined;
  return new SsoFailure(
    "storage_unavailable",
    "temporarily_unavailable",
    "The service is temporarily unavailable; try again shortly.",
    String(error),
  );
}
