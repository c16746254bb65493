/** The audit trail's reader: stored events newest first, filtered, a page at a time (the admin route `/authenticate/admin/audit`). */
import { sql } from "drizzle-orm";
import type { Database } from "../storage/db";
import { members, organisations } from "../storage/schema";
import {
  AUDIT_PREFIX,
  byPosition,
  listingStartFor,
  parseAuditObject,
  summaryOf,
  type AuditObjectSummary,
  type AuditRow,
} from "./objects";

/** Objects one page reads at most; past it the page ends early, with a `next` to go on from. */
export const MAX_OBJECT_READS = 100;
const MAX_LISTINGS = 50;

/** A position in the order newest first: the events after it are those before (`at`, `id`). */
export interface AuditPosition {
  at: number;
  id: string;
}

/** Which events: `event` a name or a prefix ending in `*`, `since` in ms, `before` the previous page's `next`. */
export interface AuditQuery {
  organisationId?: number;
  memberId?: number;
  event?: string;
  since?: number;
  before?: AuditPosition;
  limit: number;
}

/** One stored event as the reader answers it: the row, with the organisation's and member's identifiers where they still exist. */
interface AuditRecord {
  id: string;
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

/** A page: at most `limit` events, and where the next page starts (null once nothing older matches). */
export interface AuditPage {
  events: AuditRecord[];
  next: AuditPosition | null;
}

/** Where {@link readAuditEvents} reads. */
export interface AuditReaderDeps {
  bucket: R2Bucket;
  db: Database;
}

function parsedDetail(detail: string | null): Record<string, unknown> | null {
  if (detail === null) return null;
  try {
    return JSON.parse(detail) as Record<string, unknown>;
  } catch {
    return { unparsed: detail };
  }
}

function eventMatches(name: string, filter: string | undefined): boolean {
  if (filter === undefined) return true;
  return filter.endsWith("*") ? name.startsWith(filter.slice(0, -1)) : name === filter;
}

function rowMatches(row: AuditRow, query: AuditQuery): boolean {
  return (
    (query.organisationId === undefined || row.organisation_id === query.organisationId) &&
    (query.memberId === undefined || row.member_id === query.memberId) &&
    eventMatches(row.event, query.event) &&
    (query.since === undefined || row.at >= query.since) &&
    (query.before === undefined || byPosition(row, query.before) < 0)
  );
}

function objectMayMatch(object: AuditObjectSummary, query: AuditQuery): boolean {
  const has = <T>(set: ReadonlySet<T> | null, value: T | undefined) =>
    value === undefined || set === null || set.has(value);
  return (
    has(object.organisations, query.organisationId) &&
    has(object.members, query.memberId) &&
    (object.events === null || [...object.events].some((name) => eventMatches(name, query.event))) &&
    (query.before === undefined || object.minAt <= query.before.at)
  );
}

/** The stored objects in key order (newest event first), listed a page at a time within {@link MAX_LISTINGS}. */
class Listing {
  private pending: AuditObjectSummary[] = [];
  private cursor: string | undefined;
  private listings = 0;
  private done = false;

  constructor(
    private readonly bucket: R2Bucket,
    private readonly startAfter: string | undefined,
  ) {}

  /** The next object, `undefined` when none is left, `null` when the listing budget is spent. */
  async peek(): Promise<AuditObjectSummary | undefined | null> {
    while (this.pending.length === 0 && !this.done) {
      if (this.listings >= MAX_LISTINGS) return null;
      const page = await this.bucket.list({
        prefix: AUDIT_PREFIX,
        include: ["customMetadata"],
        ...(this.cursor === undefined ? { startAfter: this.startAfter } : { cursor: this.cursor }),
      });
      this.listings += 1;
      this.pending = page.objects.map(summaryOf).filter((object) => object !== undefined);
      this.cursor = page.truncated ? page.cursor : undefined;
      this.done = !page.truncated;
    }
    return this.pending[0];
  }

  take(): void {
    this.pending.shift();
  }
}

/**
 * Events matching `query`, newest first (by time, then id), each once; an object is read only when its metadata may
 * match, and an event answered once every object that may hold a newer one was read.
 */
export async function readAuditEvents(deps: AuditReaderDeps, query: AuditQuery): Promise<AuditPage> {
  const listing = new Listing(deps.bucket, query.before ? listingStartFor(query.before.at) : undefined);
  const buffered: AuditRow[] = [];
  const found: AuditRow[] = [];
  let reads = 0;
  let lastTaken: number | undefined;
  const page = async (next: AuditPosition | null): Promise<AuditPage> => ({
    events: await withIdentifiers(deps.db, found),
    next,
  });
  // Every event newer than `bound` was answered: go on from there, never from before the request's own start.
  const resumeAfter = (bound: number): AuditPosition => {
    const next = { at: Number.isFinite(bound) ? bound + 1 : Number.MAX_SAFE_INTEGER, id: "" };
    return query.before && byPosition(next, query.before) > 0 ? query.before : next;
  };
  for (;;) {
    let object = await listing.peek();
    if (object && query.since !== undefined && object.maxAt < query.since) object = undefined;
    const bound =
      object === undefined ? Number.NEGATIVE_INFINITY : object === null ? (lastTaken ?? Infinity) : object.maxAt;
    while (buffered.length > 0 && buffered.at(-1)!.at > bound) {
      const row = buffered.pop()!;
      if (found.at(-1)?.id === row.id) continue;
      found.push(row);
      if (found.length === query.limit) return page({ at: row.at, id: row.id });
    }
    if (object === undefined) return page(null);
    if (object === null || reads >= MAX_OBJECT_READS) return page(resumeAfter(bound));
    listing.take();
    lastTaken = object.maxAt;
    if (!objectMayMatch(object, query)) continue;
    const body = await deps.bucket.get(object.key);
    reads += 1;
    if (!body) continue;
    for (const row of parseAuditObject(await body.text())) if (rowMatches(row, query)) buffered.push(row);
    buffered.sort(byPosition);
  }
}

/** `rows` as records, with the identifiers of their organisations and members read from D1 in two queries. */
async function withIdentifiers(db: Database, rows: AuditRow[]): Promise<AuditRecord[]> {
  const ids = (values: (number | null)[]) => JSON.stringify([...new Set(values.filter((id) => id !== null))]);
  const organisationIds = ids(rows.map((row) => row.organisation_id));
  const memberIds = ids(rows.map((row) => row.member_id));
  const [organisationRows, memberRows] = await Promise.all([
    organisationIds === "[]"
      ? []
      : db
          .select({ id: organisations.id, identifier: organisations.identifier })
          .from(organisations)
          .where(sql`${organisations.id} IN (SELECT value FROM json_each(${organisationIds}))`),
    memberIds === "[]"
      ? []
      : db
          .select({ id: members.id, identifier: members.identifier })
          .from(members)
          .where(sql`${members.id} IN (SELECT value FROM json_each(${memberIds}))`),
  ]);
  const organisation = new Map(organisationRows.map((row) => [row.id, row.identifier]));
  const member = new Map(memberRows.map((row) => [row.id, row.identifier]));
  return rows.map((row) => ({
    id: row.id,
    at: row.at,
    event: row.event,
    outcome: row.outcome,
    organisation_id: row.organisation_id,
    organisation: row.organisation_id === null ? null : (organisation.get(row.organisation_id) ?? null),
    member_id: row.member_id,
    member: row.member_id === null ? null : (member.get(row.member_id) ?? null),
    ip: row.ip,
    user_agent: row.user_agent,
    request_id: row.request_id,
    trace_id: row.trace_id,
    detail: parsedDetail(row.detail),
  }));
}
