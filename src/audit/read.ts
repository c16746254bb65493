/** The audit trail's reader: stored events newest first, filtered, a page at a time (the admin route `/authenticate/admin/audit`). */
import { and, desc, eq, gte, lt, or, sql, type SQL } from "drizzle-orm";
import type { Database } from "../storage/db";
import { auditEvents, members, organisations } from "../storage/schema";

/** Which events to read: `event` a name or a prefix ending in `*`, `since` in ms, `before` the last one read. */
export interface AuditQuery {
  organisationId?: number;
  memberId?: number;
  event?: string;
  since?: number;
  before?: { at: number; id: number };
  limit: number;
}

/** One stored event as the reader answers it: the row, with the organisation's and member's identifiers where they still exist. */
export interface AuditRecord {
  id: number;
  at: number;
  event: string;
  outcome: string;
  organisation_id: number | null;
  organisation: string | null;
  member_id: number | null;
  member: string | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string;
  trace_id: string | null;
  detail: Record<string, unknown> | null;
}

function parsedDetail(detail: string | null): Record<string, unknown> | null {
  if (detail === null) return null;
  try {
    return JSON.parse(detail) as Record<string, unknown>;
  } catch {
    return { unparsed: detail };
  }
}

/** Events matching `query`, newest first (by time, then by id). */
export async function readAuditEvents(db: Database, query: AuditQuery): Promise<AuditRecord[]> {
  const conditions: SQL[] = [];
  if (query.organisationId !== undefined) conditions.push(eq(auditEvents.organisationId, query.organisationId));
  if (query.memberId !== undefined) conditions.push(eq(auditEvents.memberId, query.memberId));
  if (query.event?.endsWith("*")) {
    const prefix = query.event.slice(0, -1);
    conditions.push(sql`substr(${auditEvents.event}, 1, ${prefix.length}) = ${prefix}`);
  } else if (query.event !== undefined) conditions.push(eq(auditEvents.event, query.event));
  if (query.since !== undefined) conditions.push(gte(auditEvents.at, query.since));
  if (query.before !== undefined) {
    const { at, id } = query.before;
    conditions.push(or(lt(auditEvents.at, at), and(eq(auditEvents.at, at), lt(auditEvents.id, id)))!);
  }
  const rows = await db
    .select({
      id: auditEvents.id,
      at: auditEvents.at,
      event: auditEvents.event,
      outcome: auditEvents.outcome,
      organisation_id: auditEvents.organisationId,
      organisation: organisations.identifier,
      member_id: auditEvents.memberId,
      member: members.identifier,
      ip: auditEvents.ip,
      user_agent: auditEvents.userAgent,
      request_id: auditEvents.requestId,
      trace_id: auditEvents.traceId,
      detail: auditEvents.detail,
    })
    .from(auditEvents)
    .leftJoin(organisations, eq(organisations.id, auditEvents.organisationId))
    .leftJoin(members, eq(members.id, auditEvents.memberId))
    .where(and(...conditions))
    .orderBy(desc(auditEvents.at), desc(auditEvents.id))
    .limit(query.limit);
  return rows.map((row) => ({ ...row, detail: parsedDetail(row.detail) }));
}
