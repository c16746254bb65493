/** Security audit trail: one structured event per login, refresh, revoke and secret change. */
import type { WaitUntil } from "./config";
import { database } from "./storage/db";
import { auditEvents } from "./storage/schema";

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

/** Who made a request, as every audit event records it. */
export type RequestFacts = Pick<AuditEvent, "requestId" | "ip" | "userAgent">;

/** The request's facts for the audit trail; the IP only from `CF-Connecting-IP` (never `X-Forwarded-For`, which clients write). */
export function requestFacts(request: Request, requestId: string): RequestFacts {
  return {
    requestId,
    ip: request.headers.get("CF-Connecting-IP") ?? undefined,
    userAgent: request.headers.get("User-Agent") ?? undefined,
  };
}

const MAX_TEXT = 512;
const SECRET_LOOKING_KEY = /password|secret|token|pepper/i;

function clip(value: string | undefined): string | undefined {
  return value === undefined ? undefined : value.slice(0, MAX_TEXT);
}

/** `detail` with anything whose key looks like it could hold a credential replaced, as a safety net. */
function safeDetail(detail: AuditEvent["detail"]): AuditEvent["detail"] {
  if (!detail) return undefined;
  return Object.fromEntries(
    Object.entries(detail).map(([key, value]) => [key, SECRET_LOOKING_KEY.test(key) ? "[redacted]" : value]),
  );
}

/** Writes `event` as one structured JSON log line (`"type":"audit"`), without touching D1. */
export function logAuditEvent(event: AuditEvent, at = Date.now()): void {
  console.log(
    JSON.stringify({
      level: "info",
      type: "audit",
      at: new Date(at).toISOString(),
      event: event.event,
      outcome: event.outcome,
      request_id: event.requestId,
      member_id: event.memberId,
      organisation_id: event.organisationId,
      ip: clip(event.ip),
      user_agent: clip(event.userAgent),
      detail: safeDetail(event.detail),
    }),
  );
}

async function insert(db: D1Database, event: AuditEvent, at: number): Promise<void> {
  const detail = safeDetail(event.detail);
  await database(db)
    .insert(auditEvents)
    .values({
      at,
      event: event.event,
      outcome: event.outcome,
      memberId: event.memberId ?? null,
      organisationId: event.organisationId ?? null,
      ip: clip(event.ip) ?? null,
      userAgent: clip(event.userAgent) ?? null,
      requestId: event.requestId,
      detail: detail ? JSON.stringify(detail).slice(0, 2 * MAX_TEXT) : null,
    });
}

/**
 * Records `event`: one JSON log line now, and a row in D1 `audit_events` (`at` in ms since the epoch)
 * written in the background (`waitUntil`), so it never slows the response. A failed write is
 * logged and never fails the request.
 */
export function audit(ctx: WaitUntil, db: D1Database, event: AuditEvent): void {
  const at = Date.now();
  logAuditEvent(event, at);
  const write = Promise.resolve()
    .then(() => insert(db, event, at))
    .catch((error: unknown) => {
      console.error(
        JSON.stringify({
          level: "error",
          event: "audit_write_failed",
          audit_event: event.event,
          request_id: event.requestId,
          error: String(error),
        }),
      );
    });
  try {
    ctx.waitUntil(write);
  } catch {
    // No execution context to extend: the write still runs, best effort.
  }
}
