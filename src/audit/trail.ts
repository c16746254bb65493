/** Security audit trail: one structured event per login, refresh, revoke, secret change and operator action. */
import { v7 as uuidv7 } from "uuid";
import type { WaitUntil } from "../config";
import { withinDeadline } from "../deadline";
import { fnv1a32 } from "../digest";
import type { Logger } from "../log";
import { STORAGE_WAIT_MS } from "../storage/bounded";
import type { AuditRow } from "./objects";
import { auditShardName, type AuditSink } from "./sink";

/** Every kind of event the gateway records: a member's own (logins, refreshes, revokes, API-made secrets) and operators' (admin routes). */
export type AuditEventName =
  | "login.success"
  | "login.failure"
  | "refresh.success"
  | "refresh.failure"
  | "refresh.reuse_detected"
  | "revoke"
  | "revoke.all"
  | "secret.create"
  | "secret.revoke"
  | "sso.login.success"
  | "sso.login.failure"
  | OperatorEventName;

/** What operators do through the admin routes (`npm run admin`), one event each; listings and trail reads included. */
export type OperatorEventName =
  | "org.create"
  | "org.list"
  | "org.plan"
  | "org.suspend"
  | "org.activate"
  | "org.sso.set"
  | "org.sso.show"
  | "org.sso.remove"
  | "member.create"
  | "member.list"
  | "member.suspend"
  | "member.activate"
  | "member.sign-out"
  | "member.password"
  | "member.delete"
  | "member.unlock"
  | "secret.create"
  | "secret.list"
  | "secret.revoke"
  | "audit.read";

/** One audit event; never holds a password, a token or a secret value. */
export interface AuditEvent {
  event: AuditEventName;
  outcome: "success" | "failure";
  requestId: string;
  /** The request's W3C trace id (32 hex digits). */
  traceId?: string;
  memberId?: number;
  organisationId?: number;
  ip?: string;
  userAgent?: string;
  /** Small, non-secret context such as a failure reason or a `kid`. */
  detail?: Record<string, string | number | boolean>;
}

/** Who made a request, as every audit event records it. */
export type RequestFacts = Pick<AuditEvent, "requestId" | "traceId" | "ip" | "userAgent">;

/** The request's facts for the audit trail; the IP only from `CF-Connecting-IP` (never `X-Forwarded-For`, which clients write). */
export function requestFacts(request: Request, requestId: string, traceId?: string): RequestFacts {
  return {
    requestId,
    traceId,
    ip: request.headers.get("CF-Connecting-IP") ?? undefined,
    userAgent: request.headers.get("User-Agent") ?? undefined,
  };
}

const MAX_TEXT = 512;
/** Characters of `detail`'s JSON text in a stored event, at most. */
export const MAX_DETAIL = 2 * MAX_TEXT;
const SECRET_LOOKING_KEY = /password|secret|token|pepper/i;

/** The first `length` UTF-16 code units of `value`, one fewer rather than half a surrogate pair. */
function prefix(value: string, length: number): string {
  if (value.length <= length) return value;
  const code = value.charCodeAt(length - 1);
  return value.slice(0, code >= 0xd800 && code <= 0xdbff ? length - 1 : length);
}

function clip(value: string | undefined): string | undefined {
  return value === undefined ? undefined : prefix(value, MAX_TEXT);
}

/**
 * The JSON text of `detail`, at most {@link MAX_DETAIL} characters: past it, every string is clipped to the longest
 * common length that fits and `truncated: true` added (only that when even empty strings do not fit).
 */
export function detailJson(detail: NonNullable<AuditEvent["detail"]>): string {
  const whole = JSON.stringify(detail);
  if (whole.length <= MAX_DETAIL) return whole;
  const clippedTo = (length: number): string =>
    JSON.stringify({
      ...Object.fromEntries(
        Object.entries(detail).map(([key, value]) => [key, typeof value === "string" ? prefix(value, length) : value]),
      ),
      truncated: true,
    });
  if (clippedTo(0).length > MAX_DETAIL) return JSON.stringify({ truncated: true });
  let fits = 0;
  let tooLong = Math.max(...Object.values(detail).map((value) => (typeof value === "string" ? value.length : 0)));
  while (tooLong - fits > 1) {
    const middle = Math.floor((fits + tooLong) / 2);
    if (clippedTo(middle).length <= MAX_DETAIL) fits = middle;
    else tooLong = middle;
  }
  return clippedTo(fits);
}

/** `detail` with anything whose key looks like it could hold a credential replaced, as a safety net. */
function safeDetail(detail: AuditEvent["detail"]): AuditEvent["detail"] {
  if (!detail) return undefined;
  return Object.fromEntries(
    Object.entries(detail).map(([key, value]) => [key, SECRET_LOOKING_KEY.test(key) ? "[redacted]" : value]),
  );
}

/** Fields of an event a route or guard adds to the request's facts. */
export type AuditFields = Pick<AuditEvent, "event" | "outcome" | "memberId" | "organisationId" | "detail">;

/** What an {@link AuditTrail} writes to. */
export interface AuditTrailDeps {
  queues: readonly Queue[];
  /** The fallback buffer when a queue refuses or does not answer. */
  sink: DurableObjectNamespace<AuditSink>;
  logger: Logger;
  now: () => number;
  /** Longest wait for the queue, then for the buffer (ms; default `STORAGE_WAIT_MS`). */
  waitMs?: number;
}

/** The audit trail: JSON log lines, and events through a queue into R2, with `AuditSink` taking what a queue refuses. */
export class AuditTrail {
  constructor(private readonly deps: AuditTrailDeps) {}

  /** Writes `event` as one structured log line (`"type":"audit"`), without touching D1. */
  log(event: AuditEvent, at = this.deps.now()): void {
    this.deps.logger.info(event.event, {
      request_id: event.requestId,
      trace_id: event.traceId,
      type: "audit",
      at: new Date(at).toISOString(),
      outcome: event.outcome,
      member_id: event.memberId,
      organisation_id: event.organisationId,
      ip: clip(event.ip),
      user_agent: clip(event.userAgent),
      detail: safeDetail(event.detail),
    });
  }

  /** Records `event`: a log line now, then a queue message (else its `AuditSink` shard); never fails the request. */
  record(ctx: WaitUntil, event: AuditEvent): void {
    const at = this.deps.now();
    this.log(event, at);
    const row = auditRow(event, at);
    const write = this.handOver(row)
      .then((accepted) => {
        if (!accepted) throw new Error("audit sink full");
      })
      .catch((error: unknown) => {
        this.deps.logger.error("audit_write_failed", {
          request_id: event.requestId,
          trace_id: event.traceId,
          audit_event: event.event,
          error: String(error),
        });
      });
    try {
      ctx.waitUntil(write);
    } catch {
      // No execution context to extend: the write still runs, best effort.
    }
  }

  /** Sends `row` to its queue, else appends it to its shard; true once either took it. */
  private async handOver(row: AuditRow): Promise<boolean> {
    const { queues, sink, logger } = this.deps;
    const waitMs = this.deps.waitMs ?? STORAGE_WAIT_MS;
    const hash = fnv1a32(row.request_id);
    try {
      await withinDeadline(() => queues[hash % queues.length]!.send(row, { contentType: "json" }), waitMs);
      return true;
    } catch (error) {
      logger.warn("audit_queue_failed", { request_id: row.request_id, error: String(error) });
    }
    return withinDeadline(() => sink.get(sink.idFromName(auditShardName(row.request_id))).append(row), waitMs);
  }
}

/** The stored form of `event`, clipped and redacted, with its own id. */
function auditRow(event: AuditEvent, at: number): AuditRow {
  const detail = safeDetail(event.detail);
  return {
    id: uuidv7(),
    at,
    event: event.event,
    outcome: event.outcome,
    member_id: event.memberId ?? null,
    organisation_id: event.organisationId ?? null,
    ip: clip(event.ip) ?? null,
    user_agent: clip(event.userAgent) ?? null,
    request_id: event.requestId,
    trace_id: event.traceId ?? null,
    detail: detail ? detailJson(detail) : null,
  };
}
