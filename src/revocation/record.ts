/** The `Revocations` Durable Objects: one per shard of the "recent access-token revocations" record, each the one writer of its shard's KV record. */
import { DurableObject } from "cloudflare:workers";
import { fnv1a32 } from "../digest";
import { Logger } from "../log";

/** KV key of shard 0's published record (the unsharded record's key); shard *i* > 0 publishes to `access-revocations:<i>`. */
export const REVOCATIONS_KEY = "access-revocations";

/**
 * Shards of the record, each its own object and KV key, each ≤ 64 KiB and ≤ 1 write/s. A subject's
 * shard is fixed by its hash, so changing this number moves subjects: only change it together with a
 * transition that keeps reading the old shards for `ACCESS_TOKEN_TTL + CLOCK_SKEW`.
 */
export const REVOCATION_SHARDS = 16;

/**
 * Bytes of named entries (members and organisations, newest first) the published record may hold; older
 * entries beyond it are merged into buckets. With the buckets (≤ 1,024 × ≈ 18 B) the record stays under
 * the 64 KiB a KV value read on the proxied path may have (docs/capacity.md).
 */
export const MAX_NAMED_BYTES = 40 * 1024;
/** Buckets that entries beyond {@link MAX_NAMED_BYTES} are merged into (by a hash of the subject). */
const REVOCATION_BUCKETS = 1024;
/** KV accepts one write per key per second: publications are at least this far apart (a change in between waits for an alarm). */
const PUBLISH_INTERVAL_MS = 1000;

/**
 * The published record: per member id, organisation identifier or bucket, the revocation's instant in seconds
 * with its millisecond as a fraction (`1764860000.123`); every access token issued at or before it is refused
 * (src/revocation/order.ts). Only entries younger than `ACCESS_TOKEN_TTL + CLOCK_SKEW` are kept: older tokens are
 * expired anyway.
 */
export interface RevocationSnapshot {
  v: 1;
  /**
   * Set when every value carries its millisecond. Absent in a record from before (whole seconds, each meaning the
   * end of its second); a reader of that release compares whole-second `iat`s with either and reaches the same verdicts.
   */
  exact?: true;
  /** Grows with every change the object records: a copy never replaces a newer one. */
  version: number;
  /** When the object built this record (ms). */
  publishedAt: number;
  members: Record<string, number>;
  organisations: Record<string, number>;
  /** Present only past {@link MAX_NAMED_BYTES}: bucket → revoked-before for every subject hashed into it. */
  buckets?: Record<string, number>;
  /** The shard; absent in a record published before sharding, which readers check for every subject. */
  shard?: number;
  /**
   * Present while the record holds subjects of other shards (shard 0's entries from before sharding):
   * readers then check this record for every subject, not only for those of its shard.
   */
  legacy?: true;
}

/** What to revoke: every access token of these members or organisations issued at or before `at` (ms). */
export interface RevocationRequest {
  /**
   * The shard every subject of this request belongs to ({@link revocationShard}). Absent in a request from a
   * release before sharding, which sends every subject to shard 0's object (`global`): taken as shard 0, whose
   * record then marks itself `legacy` for the subjects of other shards.
   */
  shard?: number;
  members?: number[];
  organisations?: string[];
  /** The revocation's instant (ms). */
  at?: number;
  /** A whole second, from a release before `at`: taken as the end of that second. */
  before?: number;
  /** How long an entry must be kept: `ACCESS_TOKEN_TTL + CLOCK_SKEW` seconds. */
  keepSeconds: number;
  /** The caller's clock (ms). */
  now: number;
}

/** A subject's bucket: the low 10 bits of its hash. */
export function revocationBucket(subject: string): number {
  return fnv1a32(subject) % REVOCATION_BUCKETS;
}

/** A subject's shard: hash bits above the bucket's, so the subjects of one shard spread over every bucket. */
export function revocationShard(subject: string): number {
  return Math.floor(fnv1a32(subject) / REVOCATION_BUCKETS) % REVOCATION_SHARDS;
}

/**
 * The object name of a shard. Shard 0 keeps the unsharded record's object (`global`) and KV key, so
 * entries written before sharding stay published; readers check shard 0 for every subject while it holds any.
 */
export function revocationShardName(shard: number): string {
  return shard === 0 ? "global" : `shard-${shard}`;
}

/** The KV key a shard publishes to. */
export function revocationShardKey(shard: number): string {
  return shard === 0 ? REVOCATIONS_KEY : `${REVOCATIONS_KEY}:${shard}`;
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
);`;

type Row = { subject: string; before: number; expires_at: number };

/** Rows written before instants were kept in ms hold whole seconds, all below this (1973 in ms, 5138 in seconds). */
const FIRST_MS_INSTANT = 100_000_000_000;

/** A stored or requested revocation time as an instant (ms): a whole second (from before) means its end. */
const instantOf = (at: number) => (at < FIRST_MS_INSTANT ? at * 1000 + 999 : at);

/**
 * One object per shard ({@link revocationShardName}). It keeps every live revocation of its shard
 * exactly in SQLite, and publishes the bounded record to its KV key ({@link revocationShardKey}) at every
 * change, at most once a second (changes in between, and refused writes, are published by an alarm).
 * At 5 revocations a second over 16 shards, each object sees about one call every 3 s.
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
    const at = instantOf(request.at ?? request.before ?? Number.NaN);
    if (!Number.isSafeInteger(at)) throw new Error(`no instant in ${JSON.stringify(request)}`);
    if (!Number.isSafeInteger(shard) || shard < 0 || shard >= REVOCATION_SHARDS) throw new Error(`no shard ${shard}`);
    const recorded = this.ctx.storage.sql.exec<{ shard: number }>("SELECT shard FROM shard WHERE id = 1").toArray()[0];
    if (recorded && recorded.shard !== shard) throw new Error(`shard ${shard} sent to shard ${recorded.shard}`);
    const subjects = [
      ...(request.members ?? []).map((id) => `m:${id}`),
      ...(request.organisations ?? []).map((identifier) => `o:${identifier}`),
    ];
    const expiresAt = at + keepSeconds * 1000;
    this.ctx.storage.transactionSync(() => {
      for (const subject of subjects) {
        this.ctx.storage.sql.exec(
          `INSERT INTO revocations (subject, before, expires_at) VALUES (?, ?, ?)
           ON CONFLICT (subject) DO UPDATE SET before = max(before, excluded.before), expires_at = max(expires_at, excluded.expires_at)`,
          subject,
          at,
          expiresAt,
        );
      }
      this.ctx.storage.sql.exec(
        "INSERT INTO version (id, version) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET version = version + 1",
      );
      this.ctx.storage.sql.exec("INSERT OR REPLACE INTO shard (id, shard) VALUES (1, ?)", shard);
    });
    const snapshot = this.snapshot(now);
    await this.publish(snapshot, now);
    return snapshot;
  }

  /** The record as it would be published now. */
  async current(now: number): Promise<RevocationSnapshot> {
    return this.snapshot(now);
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
    const snapshot: RevocationSnapshot = {
      v: 1,
      exact: true,
      version,
      publishedAt: now,
      shard,
      members: {},
      organisations: {},
    };
    let named = 0;
    const buckets = new Map<string, number>();
    rows.forEach((row) => {
      const at = instantOf(row.before);
      if (revocationShard(row.subject) !== shard) snapshot.legacy = true;
      // `"<id>":<10 digits>.<3 digits>,` in JSON: the subject without its 2-character prefix, plus 16.
      named += row.subject.length + 16;
      if (named > MAX_NAMED_BYTES) {
        // Past the bound: merged into its bucket, so every subject of that bucket is refused for
        // tokens up to the newest merged instant (closed for more members than needed, never open).
        const bucket = String(revocationBucket(row.subject));
        buckets.set(bucket, Math.max(buckets.get(bucket) ?? 0, at));
      } else if (row.subject.startsWith("m:")) {
        snapshot.members[row.subject.slice(2)] = at / 1000;
      } else {
        snapshot.organisations[row.subject.slice(2)] = at / 1000;
      }
    });
    if (buckets.size > 0) snapshot.buckets = Object.fromEntries([...buckets].map(([key, at]) => [key, at / 1000]));
    return snapshot;
  }

  /**
   * Writes the record to KV, at most once per {@link PUBLISH_INTERVAL_MS} (KV's one write per key per
   * second): a change sooner than that is marked and published by an alarm with the record as it is
   * then. A refused write is retried the same way.
   */
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
      await this.env.TOKENS.put(revocationShardKey(this.shard()), JSON.stringify(snapshot), {
        expirationTtl: keepSeconds,
      });
      sql.exec("INSERT OR REPLACE INTO publication (id, published_at, dirty) VALUES (1, ?, 0)", wallClock);
    } catch (error) {
      new Logger().error("revocations_publish_failed", { error: String(error) });
      sql.exec("INSERT OR REPLACE INTO publication (id, published_at, dirty) VALUES (1, ?, 1)", wallClock);
      await this.ctx.storage.setAlarm(wallClock + PUBLISH_INTERVAL_MS);
    }
  }

  /** This object's shard, recorded at its first revocation; the unsharded `global` object (no row yet) is shard 0. */
  private shard(): number {
    const row = this.ctx.storage.sql.exec<{ shard: number }>("SELECT shard FROM shard WHERE id = 1").toArray()[0];
    return row?.shard ?? 0;
  }

  private expiries(): number[] {
    return this.ctx.storage.sql
      .exec<{ expires_at: number }>("SELECT max(expires_at) AS expires_at FROM revocations")
      .toArray()
      .map((row) => row.expires_at ?? 0);
  }
}
