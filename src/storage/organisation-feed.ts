/** The plan gate's D1 reads: one organisation's state, and the organisation change feed, each with D1's clock. */
import { sql } from "drizzle-orm";
import type { Database } from "./db";

/** D1's clock in ms, computed as the triggers compute `updated_at` (migrations/0003_organisation_feed_triggers.sql). */
const D1_NOW_MS = sql.raw(`CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)`);

/** An organisation's plan and status as D1 held them; both undefined when no organisation has that identifier. */
export interface OrganisationState {
  plan: string | undefined;
  status: string | undefined;
}

/** One organisation's state, read at D1 time `asOf` (ms). */
export interface OrganisationRead {
  state: OrganisationState;
  asOf: number;
}

/** One change in the feed: the organisation's state after it, at D1 time `changedAt` (ms). */
export interface OrganisationChange {
  identifier: string;
  state: OrganisationState;
  changedAt: number;
}

/** The feed's changes since a time, oldest first, and D1's clock when they were read. */
export interface OrganisationFeedPage {
  changes: OrganisationChange[];
  /** D1 time (ms) of the read: every change committed before it is listed, unless the page is full. */
  now: number;
}

/** Plan and status of the organisation `identifier` and D1's clock, in one query (one row even when there is none). */
export async function readOrganisationState(db: Database, identifier: string): Promise<OrganisationRead> {
  const [row] = await db.all<{ now: number; state: string | null }>(sql`
    select ${D1_NOW_MS} as "now",
      (select json_array("plan", "status") from "organisations" where "organisations"."identifier" = ${identifier}) as "state"`);
  if (row === undefined) throw new Error("the organisation state query returned no row");
  if (row.state === null) return { state: { plan: undefined, status: undefined }, asOf: row.now };
  const [plan, status] = JSON.parse(row.state) as [string, string];
  return { state: { plan, status }, asOf: row.now };
}

/** Plan and status of each of `identifiers` (one query, however many; undefined for no such organisation), at D1 time `asOf`. */
export async function readOrganisationStates(
  db: Database,
  identifiers: readonly string[],
): Promise<{ states: Map<string, OrganisationState>; asOf: number }> {
  const rows = await db.all<{ now: number; identifier: string; state: string | null }>(sql`
    select ${D1_NOW_MS} as "now", "wanted"."value" as "identifier",
      (select json_array("plan", "status") from "organisations" where "organisations"."identifier" = "wanted"."value") as "state"
    from json_each(${JSON.stringify(identifiers)}) as "wanted"`);
  const asOf = rows[0]?.now;
  if (asOf === undefined) throw new Error("the organisation states query returned no row");
  const states = new Map<string, OrganisationState>();
  for (const row of rows) {
    const [plan, status] = row.state === null ? [] : (JSON.parse(row.state) as [string, string]);
    states.set(row.identifier, { plan, status });
  }
  return { states, asOf };
}

/**
 * Up to `limit` changes with `changedAt` ≥ `since` (D1 ms), oldest first: `organisations.updated_at`, and tombstones
 * (listed before a row of the same time). One query, answered from the two indexes.
 */
export async function readOrganisationFeed(db: Database, since: number, limit: number): Promise<OrganisationFeedPage> {
  const rows = await db.all<{
    now: number;
    identifier: string | null;
    plan: string | null;
    status: string | null;
    changed_at: number | null;
    removed: number | null;
  }>(sql`
    select ${D1_NOW_MS} as "now", "changes".* from (select 1) left join (
      select "identifier", "plan", "status", "updated_at" as "changed_at", 0 as "removed" from "organisations"
        where "organisations"."updated_at" >= ${since}
      union all
      select "identifier", null, null, "removed_at", 1 from "organisation_tombstones"
        where "organisation_tombstones"."removed_at" >= ${since}
      order by 4, 5 desc
      limit ${limit}
    ) as "changes" on 1`);
  const now = rows[0]?.now;
  if (now === undefined) throw new Error("the organisation feed query returned no row");
  const changes = rows
    .filter((row) => row.identifier !== null && row.changed_at !== null)
    .sort((a, b) => a.changed_at! - b.changed_at! || (b.removed ?? 0) - (a.removed ?? 0))
    .map((row): OrganisationChange => ({
      identifier: row.identifier!,
      state: row.removed ? { plan: undefined, status: undefined } : { plan: row.plan!, status: row.status! },
      changedAt: row.changed_at!,
    }));
  return { changes, now };
}
