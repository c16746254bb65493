/** Security audit trail: one structured event per login, refresh, revoke and secret change. */
import type { WaitUntil } from "./config";

/** Every kind of event the gateway records. */
export type AuditEventName =
  | "login.success"
  | "login.failure"
  | "refresh.success"
  | "refresh.failure"
  | "refresh.reuse_detected"
  | "revoke"
  | "revoke.all"
  | "secret.created"
  | "secret.revoked";

/** One audit event; never holds a password, a token or a secret value. */
export interface AuditEvent {
  event: AuditEventName;
  outcome: "success" | "failure";
  requestId: string;
  memberId?: number;
  organisationId?: number;
  ip?: string;
  userAgent?: string;
  /** Small, non-secret context such as a failure reason or a `kid`. */
  detail?: Record<string, string | number | boolean>;
}

/** Records `event` in the background (`waitUntil`) so it never slows the response. */
export function audit(ctx: WaitUntil, _db: D1Database, event: AuditEvent): void {
  ctx.waitUntil(Promise.resolve().then(() => console.log(JSON.stringify({ level: "info", at: new Date().toISOString(), ...event }))));
}
