/** The `Revocations` Durable Objects: one per shard of the "recent access-token revocations" record, each the one writer of its shard's KV record. */
import { DurableObject } from "cloudflare:workers";
import { fnv1a32 } from "../digest";
import { Logger } from "../log";

/** KV key of shard 0 of the first layout (the unsharded record's key). */
export const REVOCATIONS_KEY = "access-revocations";

/** How the record is split into shards by subject hash; a new shard count is a new layout with new names and keys. */
export interface RevocationLayout {
  id: 1 | 2;
  shards: number;
  name(shard: number): string;
  key(shard: number): string;
}

/** The first layout, read only: 16 shards, shard 0 the unsharded record's object (`global`) and key. */
export const FIRST_LAYOUT: RevocationLayout = {
  id: 1,
  shards: 16,
  name: (shard) => (shard === 0 ? "global" : `shard-${shard}`),
  key: (shard) => (shard === 0 ? REVOCATIONS_KEY : `${REVOCATIONS_KEY}:${shard}`),
};

/** The layout revocations are written to: 128 shards (room for ≈ 260,000 named entries, docs/capacity.md). */
export const REVOCATION_LAYOUT: RevocationLayout = {
  id: 2,
  shards: 128,
  name: (shard) => `v2-shard-${shard}`,
  key: (shard) => `${REVOCATIONS_KEY}:v2:${shard}`,
};

export const REVOCATION_SHARDS = REVOCATION_LAYOUT.shards;

/** Bytes of named entries (newest first) a published record holds; older ones merge into buckets (docs/capacity.md § 6). */
export const MAX_NAMED_BYTES = 40 * 1024;
const REVOCATION_BUCKETS = 1024;
/** KV accepts one write per key per second: publications are at least this far apart. */
const PUBLISH_INTERVAL_MS = 1000;

/** The published record: a revocation instant per member, organisation or bucket (docs/storage.md § Access-token revocations). */
export interface RevocationSnapshot {
  v: 1 | 2;
  /** Version 1: set when every value carries its millisecond. */
  exact?: true;
  /** Version 2: every value is ms after this instant. */
  base?: number;
  /** Grows with every change the object records: a copy never replaces a newer one. */
  version: number;
  publishedAt: number;
  members: Record<string, number>;
  organisations: Record<string, number>;
  /** Present only past {@link MAX_NAMED_BYTES}: bucket → revoked-before for every subject hashed into it. */
  buckets?: Record<string, number>;
  /** Absent in a record published before sharding, which readers check for every subject. */
  shard?: number;
  /** A first-layout record that holds subjects of other shards: readers check it for every subject. */
  legacy?: true;
}

/** What to revoke: every access token of these members or organisations issued at or before `at` (ms). */
export interface RevocationRequest {
  /** Absent from older releases: the first layout. */
  layout?: 1 | 2;
  /** The shard of every subject here ({@link revocationShard}); absent from releases before sharding: shard 0. */
  shard?: number;
  members?: number[];
  organisations?: string[];
  at?: number;
  /** A whole second, from a release before `at`: taken as the end of that second. */
  before?: number;
  /** `ACCESS_TOKEN_TTL + CLOCK_SKEW`. */
  keepSeconds: number;
  now: number;
  /** The D1 bookmark of the writes that recorded the revocation. */
  bookmark?: string;
}

/** D1 writes that reads from replicas must see: their bookmark, kept `keepSeconds` for these subjects of one shard. */
export interface BookmarkRequest {
  shard: number;
  /** `m:<member id>`, `o:<organisation identifier>`, `a:<account key>` or `d:<domain>`. */
  subjects: string[];
  bookmark: string;
  keepSeconds: number;
  now: number;
}

/** A subject's bucket: the low 10 bits of its hash. */
export function revocationBucket(subject: string): number {
  return fnv1a32(subject) % REVOCATION_BUCKETS;
}

/** A subject's shard in `layout`: hash bits above the bucket's, so the subjects of one shard spread over every bucket. */
export function revocationShard(subject: string, layout: RevocationLayout = REVOCATION_LAYOUT): number {
  return Math.floor(fnv1a32(subject) / REVOCATION_BUCKETS) % layout.shards;
}

function layoutOf(id: number | undefined): RevocationLayout {
  return id === REVOCATION_LAYOUT.id ? REVOCATION_LAYOUT : FIRST_LAYOUT;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS revocations (
  subject TEXT PRIMARY KEY,
  before INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS publication (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  published_at INTEGER NOT NULL,
  dirty INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS version (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS shard (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  shard INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS layout (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  layout INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS bookmarks (
  subject TEXT PRIMARY KEY,
  bookmark TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);`;

type Row = { subject: string; before: number; expires_at: number };

/** Rows written before instants were kept in ms hold whole seconds, all below this (1973 in ms, 5138 in seconds). */
const FIRST_MS_INSTANT = 100_000_000_000;

/** A stored or requested revocation time as an instant (ms): a whole second (from before) means its end. */
const instantOf = (at: number) => (at < FIRST_MS_INSTANT ? at * 1000 + 999 : at);

/**
 * One object per shard: every live revocation of the shard in SQLite, published to its KV key at most once a second,
 * and per subject the D1 bookmark that reads must see (src/revocation/reads.ts). Tables: docs/storage.md § Durable Objects.
 */
export class Revocations extends DurableObject<Cloudflare.Env> {
  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      ctx.storage.sql.exec(SCHEMA);
    });
  }

  /** Records a revocation and publishes it; returns the record as published (or about to be). */
  async revoke(request: RevocationRequest): Promise<RevocationSnapshot> {
    const { keepSeconds, now, shard = 0 } = request;
    const layout = layoutOf(request.layout);
    const at = instantOf(request.at ?? request.before ?? Number.NaN);
    if (!Number.isSafeInteger(at)) throw new Error(`no instant in ${JSON.stringify(request)}`);
    this.checkShard(shard, layout);
    const subjects = [
      ...(request.members ?? []).map((id) => `m:${id}`),
      ...(request.organisations ?? []).map((identifier) => `o:${identifier}`),
    ];
    const expiresAt = at + keepSeconds * 1000;
    const sql = this.ctx.storage.sql;
    this.ctx.storage.transactionSync(() => {
      for (const subject of subjects) {
        sql.exec(
          `INSERT INTO revocations (subject, before, expires_at) VALUES (?, ?, ?)
           ON CONFLICT (subject) DO UPDATE SET before = max(before, excluded.before), expires_at = max(expires_at, excluded.expires_at)`,
          subject,
          at,
          expiresAt,
        );
      }
      if (request.bookmark !== undefined) this.keepBookmark(subjects, request.bookmark, expiresAt, now);
      sql.exec("INSERT INTO version (id, version) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET version = version + 1");
      sql.exec("INSERT OR REPLACE INTO shard (id, shard) VALUES (1, ?)", shard);
      sql.exec("INSERT OR REPLACE INTO layout (id, layout) VALUES (1, ?)", layout.id);
    });
    const snapshot = this.snapshot(now);
    await this.publish(snapshot, now);
    return snapshot;
  }

  /** Keeps the bookmark of D1 writes that did not revoke anything (nothing is published). */
  async remember(request: BookmarkRequest): Promise<void> {
    const { shard, subjects, bookmark, keepSeconds, now } = request;
    this.checkShard(shard, REVOCATION_LAYOUT);
    this.ctx.storage.transactionSync(() => {
      this.keepBookmark(subjects, bookmark, now + keepSeconds * 1000, now);
      this.ctx.storage.sql.exec("INSERT OR REPLACE INTO shard (id, shard) VALUES (1, ?)", shard);
      this.ctx.storage.sql.exec("INSERT OR REPLACE INTO layout (id, layout) VALUES (1, ?)", REVOCATION_LAYOUT.id);
    });
  }

  /** The record as it would be published now. */
  async current(now: number): Promise<RevocationSnapshot> {
    return this.snapshot(now);
  }

  /** The latest D1 bookmark kept for any of `subjects`, or null: a read of their rows must be at least this fresh. */
  async bookmark(subjects: string[], now: number): Promise<string | null> {
    if (subjects.length === 0) return null;
    const row = this.ctx.storage.sql
      .exec<{ bookmark: string | null }>(
        `SELECT max(bookmark) AS bookmark FROM bookmarks WHERE subject IN (SELECT value FROM json_each(?)) AND expires_at > ?`,
        JSON.stringify(subjects),
        now,
      )
      .toArray()[0];
    return row?.bookmark ?? null;
  }

  /** Publishes what a coalesced revocation left unpublished. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const pending = this.ctx.storage.sql
      .exec<{ dirty: number }>("SELECT dirty FROM publication WHERE id = 1")
      .toArray();
    if (pending[0]?.dirty) await this.publish(this.snapshot(now), now);
  }

  private snapshot(now: number): RevocationSnapshot {
    const sql = this.ctx.storage.sql;
    sql.exec("DELETE FROM revocations WHERE expires_at <= ?", now);
    const rows = sql.exec<Row>("SELECT subject, before, expires_at FROM revocations ORDER BY before DESC").toArray();
    const version =
      sql.exec<{ version: number }>("SELECT version FROM version WHERE id = 1").toArray()[0]?.version ?? 0;
    const shard = this.shard();
    const layout = this.layout();
    const snapshot: RevocationSnapshot =
      layout.id === REVOCATION_LAYOUT.id
        ? { v: 2, base: 0, version, publishedAt: now, shard, members: {}, organisations: {} }
        : { v: 1, exact: true, version, publishedAt: now, shard, members: {}, organisations: {} };
    const base = rows.reduce((least, row) => Math.min(least, instantOf(row.before)), Infinity);
    if (snapshot.v === 2) snapshot.base = Number.isFinite(base) ? base : now;
    const value = (at: number) => (snapshot.v === 2 ? at - snapshot.base! : at / 1000);
    let named = 0;
    const buckets = new Map<string, number>();
    rows.forEach((row) => {
      const at = instantOf(row.before);
      if (layout.id === FIRST_LAYOUT.id && revocationShard(row.subject, layout) !== shard) snapshot.legacy = true;
      // `"<subject without its 2-character prefix>":<value>,` in JSON.
      named += row.subject.length + 2 + String(value(at)).length;
      if (named > MAX_NAMED_BYTES) {
        // Merged into its bucket: closed for more subjects than needed, never open.
        const bucket = String(revocationBucket(row.subject));
        buckets.set(bucket, Math.max(buckets.get(bucket) ?? 0, at));
      } else if (row.subject.startsWith("m:")) {
        snapshot.members[row.subject.slice(2)] = value(at);
      } else {
        snapshot.organisations[row.subject.slice(2)] = value(at);
      }
    });
    if (buckets.size > 0) snapshot.buckets = Object.fromEntries([...buckets].map(([key, at]) => [key, value(at)]));
    return snapshot;
  }

  /** Writes the record to KV, at most once per {@link PUBLISH_INTERVAL_MS}; a change sooner, or a refused write, by alarm. */
  private async publish(snapshot: RevocationSnapshot, now: number): Promise<void> {
    const sql = this.ctx.storage.sql;
    const wallClock = Date.now();
    const last = sql.exec<{ published_at: number }>("SELECT published_at FROM publication WHERE id = 1").toArray()[0];
    const later = () => {
      sql.exec(
        "INSERT OR REPLACE INTO publication (id, published_at, dirty) VALUES (1, ?, 1)",
        last?.published_at ?? wallClock,
      );
      return this.ctx.storage.setAlarm((last?.published_at ?? wallClock) + PUBLISH_INTERVAL_MS);
    };
    if (last && wallClock - last.published_at < PUBLISH_INTERVAL_MS) return later();
    const keepSeconds = Math.max(60, Math.ceil((Math.max(0, ...this.expiries()) - now) / 1000) + 60);
    try {
      await this.env.TOKENS.put(this.layout().key(this.shard()), JSON.stringify(snapshot), {
        expirationTtl: keepSeconds,
      });
      sql.exec("INSERT OR REPLACE INTO publication (id, published_at, dirty) VALUES (1, ?, 0)", wallClock);
    } catch (error) {
      new Logger().error("revocations_publish_failed", { error: String(error) });
      sql.exec("INSERT OR REPLACE INTO publication (id, published_at, dirty) VALUES (1, ?, 1)", wallClock);
      await this.ctx.storage.setAlarm(wallClock + PUBLISH_INTERVAL_MS);
    }
  }

  /** Throws unless `shard` of `layout` is this object's (or it has none yet). */
  private checkShard(shard: number, layout: RevocationLayout): void {
    if (!Number.isSafeInteger(shard) || shard < 0 || shard >= layout.shards) throw new Error(`no shard ${shard}`);
    const recorded = this.ctx.storage.sql.exec<{ shard: number }>("SELECT shard FROM shard WHERE id = 1").toArray()[0];
    if (recorded && (recorded.shard !== shard || this.layout().id !== layout.id))
      throw new Error(`shard ${shard} of layout ${layout.id} sent to shard ${recorded.shard}`);
  }

  /** Keeps the latest of `bookmark` and the one held per subject (bookmarks sort in time order), dropping expired ones. */
  private keepBookmark(subjects: string[], bookmark: string, expiresAt: number, now: number): void {
    const sql = this.ctx.storage.sql;
    sql.exec("DELETE FROM bookmarks WHERE expires_at <= ?", now);
    for (const subject of subjects)
      sql.exec(
        `INSERT INTO bookmarks (subject, bookmark, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (subject) DO UPDATE SET bookmark = max(bookmark, excluded.bookmark), expires_at = max(expires_at, excluded.expires_at)`,
        subject,
        bookmark,
        expiresAt,
      );
  }

  /** This object's shard, recorded at its first revocation; the unsharded `global` object (no row yet) is shard 0. */
  private shard(): number {
    const row = this.ctx.storage.sql.exec<{ shard: number }>("SELECT shard FROM shard WHERE id = 1").toArray()[0];
    return row?.shard ?? 0;
  }

  /** This object's layout, recorded at its first revocation; objects from before layouts are of the first. */
  private layout(): RevocationLayout {
    const row = this.ctx.storage.sql.exec<{ layout: number }>("SELECT layout FROM layout WHERE id = 1").toArray()[0];
    return layoutOf(row?.layout);
  }

  private expiries(): number[] {
    return this.ctx.storage.sql
      .exec<{ expires_at: number }>("SELECT max(expires_at) AS expires_at FROM revocations")
      .toArray()
      .map((row) => row.expires_at ?? 0);
  }
}
