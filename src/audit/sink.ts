/** The `AuditSink` Durable Object: one shard of the audit trail's buffer, flushed to D1 `audit_events` in one statement at most once a second. */
import { DurableObject } from "cloudflare:workers";
import { fnv1a32 } from "../digest";
import { Logger } from "../log";

/**
 * Shards of the sink (objects named `audit-0` … `audit-15`). D1 sees at most this many audit writes a
 * second whatever the login and refresh rate; each shard takes 1/16 of the events (≈ 44 /s at the
 * capacity model's target, docs/capacity.md § 7), far under a Durable Object's 1,000 requests/s.
 */
export const AUDIT_SHARDS = 16;
/** A shard writes to D1 at most once per this interval; the first event of an idle shard is written at once. */
export const FLUSH_INTERVAL_MS = 1000;
/**
 * Rows per D1 statement, at most. They travel as one JSON text bound to one parameter (D1 allows 100
 * bound parameters per query and 2 MB per string), itself at most {@link MAX_FLUSH_BYTES}: a typical row
 * is ≈ 0.35 KB, the largest under 10 KB of UTF-8 (512-character IP and user agent, 1,024-character detail,
 * every character escaped or multi-byte).
 */
export const ROWS_PER_FLUSH = 2000;
/**
 * UTF-8 bytes of JSON per D1 statement, at most: half of D1's limit of 2,000,000 bytes per string, whatever
 * the rows hold. Bytes, not characters: a row of non-ASCII text takes up to 3 bytes per UTF-16 code unit.
 */
export const MAX_FLUSH_BYTES = 1_000_000;
/**
 * Failed tries of a one-row batch, while D1 answers a trivial query, after which that row is set aside
 * (moved to the shard's `rejected` table, logged `audit_row_rejected`) so the rows behind it keep flowing.
 */
export const MAX_ROW_FAILURES = 5;
/** Rows a shard keeps in `rejected`, at most; a row set aside beyond it is only logged. */
export const MAX_REJECTED = 1000;
/**
 * Events a shard keeps while D1 refuses its writes (≈ 38 minutes of the target's 44 events/s). Past it,
 * new events are refused: the caller logs `audit_write_failed`, and the event's own JSON log line
 * remains its record. The oldest are kept, since they show how an incident started.
 */
export const MAX_PENDING = 100_000;
/** After a failed write, the next try waits this long, doubled per further failure, up to a minute. */
const RETRY_BASE_MS = 2000;
const RETRY_MAX_MS = 60_000;

/** One `audit_events` row as the sink stores and writes it (already clipped and redacted by the caller). */
export interface AuditRow {
  at: number;
  event: string;
  outcome: "success" | "failure";
  member_id: number | null;
  organisation_id: number | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string;
  trace_id: string | null;
  detail: string | null;
}

const COLUMNS = [
  "at",
  "event",
  "outcome",
  "member_id",
  "organisation_id",
  "ip",
  "user_agent",
  "request_id",
  "trace_id",
  "detail",
] as const satisfies readonly (keyof AuditRow)[];

/** Inserts every row of the JSON array bound to `?1`, in order, in one statement. */
export const INSERT_AUDIT_ROWS = `INSERT INTO audit_events (${COLUMNS.join(", ")}) SELECT ${COLUMNS.map(
  (column) => `json_extract(value, '$.${column}')`,
).join(", ")} FROM json_each(?1)`;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS pending (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  row TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS flushes (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  last_at INTEGER NOT NULL,
  failures INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  max_rows INTEGER NOT NULL,
  row_failures INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
  id INTEGER PRIMARY KEY,
  row TEXT NOT NULL,
  at INTEGER NOT NULL,
  error TEXT NOT NULL
);`;

/** The name of the shard an event goes to: a hash of its request id, so one request's events stay in order. */
export function auditShardName(requestId: string): string {
  return `audit-${fnv1a32(requestId) % AUDIT_SHARDS}`;
}

/** What one flush did. */
export interface FlushResult {
  /** Rows written to D1 (0 when nothing was pending or the write failed). */
  written: number;
  /** Rows still pending after it. */
  pending: number;
  failed: boolean;
  /** Rows the next try takes, at most: halved after each failed try of several rows, doubled after a success. */
  nextBatchRows: number;
  /** Whether the flush set its one row aside (see {@link MAX_ROW_FAILURES}). */
  rejected: boolean;
}

/**
 * One shard. {@link AuditSink.append} stores the event in the object's SQLite and makes sure an alarm
 * is set: at once if the shard has not written for {@link FLUSH_INTERVAL_MS}, else that long after its
 * last write. The alarm writes up to {@link ROWS_PER_FLUSH} pending rows (at most {@link MAX_FLUSH_BYTES}
 * bytes of JSON) to D1 in one statement and deletes them only once D1 accepted them (a failure keeps them
 * and retries with back-off, each failed try of several rows halving the next batch, down to one row; a
 * row D1 keeps refusing alone is set aside). Delivery is at least once: if the object dies between D1's
 * commit and its own delete, the rows are written again.
 */
export class AuditSink extends DurableObject<Cloudflare.Env> {
  private flushing = false;

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      ctx.storage.sql.exec(SCHEMA);
    });
  }

  /** Buffers `row`; returns false, storing nothing, when the shard already holds {@link MAX_PENDING} events. */
  async append(row: AuditRow): Promise<boolean> {
    if (pendingCount(this.ctx.storage) >= MAX_PENDING) return false;
    this.ctx.storage.sql.exec("INSERT INTO pending (row) VALUES (?)", JSON.stringify(row));
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(nextFlushAt(this.ctx.storage));
    return true;
  }

  /** Writes what is pending to D1. */
  override async alarm(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      await flushAuditRows(this.ctx.storage, this.env.DB);
    } finally {
      this.flushing = false;
    }
  }
}

function pendingCount(storage: DurableObjectStorage): number {
  const row = storage.sql.exec<{ n: number | null }>("SELECT max(id) - min(id) + 1 AS n FROM pending").one();
  return row.n ?? 0;
}

function flushState(storage: DurableObjectStorage): { lastAt: number; failures: number } {
  const row = storage.sql
    .exec<{ last_at: number; failures: number }>("SELECT last_at, failures FROM flushes WHERE id = 1")
    .toArray()[0];
  return { lastAt: row?.last_at ?? 0, failures: row?.failures ?? 0 };
}

function batchState(storage: DurableObjectStorage): { maxRows: number; rowFailures: number } {
  const row = storage.sql
    .exec<{ max_rows: number; row_failures: number }>("SELECT max_rows, row_failures FROM batches WHERE id = 1")
    .toArray()[0];
  return { maxRows: row?.max_rows ?? ROWS_PER_FLUSH, rowFailures: row?.row_failures ?? 0 };
}

function saveBatchState(storage: DurableObjectStorage, maxRows: number, rowFailures: number): void {
  storage.sql.exec(
    "INSERT OR REPLACE INTO batches (id, max_rows, row_failures) VALUES (1, ?, ?)",
    maxRows,
    rowFailures,
  );
}

/** Whether `db` answers a trivial query: tells a row D1 refuses from D1 refusing everything. */
async function answers(db: D1Database): Promise<boolean> {
  try {
    await db.prepare("SELECT 1").first();
    return true;
  } catch {
    return false;
  }
}

/** Moves the pending row `row` to `rejected` (while it has room) and logs it. */
function reject(storage: DurableObjectStorage, row: { id: number; row: string }, at: number, error: string): void {
  storage.sql.exec("DELETE FROM pending WHERE id = ?", row.id);
  const kept = storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM rejected").one().n < MAX_REJECTED;
  if (kept)
    storage.sql.exec("INSERT INTO rejected (id, row, at, error) VALUES (?, ?, ?, ?)", row.id, row.row, at, error);
  let requestId: unknown = null;
  try {
    requestId = (JSON.parse(row.row) as Partial<AuditRow>).request_id ?? null;
  } catch {
    // Not JSON: the row is kept (or logged) as it is.
  }
  new Logger().error("audit_row_rejected", {
    request_id: typeof requestId === "string" ? requestId : undefined,
    failures: MAX_ROW_FAILURES,
    kept,
    error,
  });
}

function nextFlushAt(storage: DurableObjectStorage): number {
  const { lastAt, failures } = flushState(storage);
  const wait = failures > 0 ? Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (failures - 1)) : FLUSH_INTERVAL_MS;
  return Math.max(Date.now(), lastAt + wait);
}

/**
 * One flush of a shard's storage into `db`: the alarm's work, exported so a test can run it against a
 * failing D1 (inside the object, through `runInDurableObject`). Schedules the next alarm if rows remain.
 */
export async function flushAuditRows(storage: DurableObjectStorage, db: D1Database): Promise<FlushResult> {
  const { maxRows, rowFailures } = batchState(storage);
  const rows: { id: number; row: string }[] = [];
  let bytes = 2;
  // SQLite measures each row's UTF-8 bytes itself (`pending` holds UTF-8 text): no copy, no encoding in JS.
  for (const row of storage.sql.exec<{ id: number; row: string; bytes: number }>(
    "SELECT id, row, length(CAST(row AS BLOB)) AS bytes FROM pending ORDER BY id LIMIT ?",
    maxRows,
  )) {
    bytes += row.bytes + 1;
    if (bytes > MAX_FLUSH_BYTES && rows.length > 0) break;
    rows.push({ id: row.id, row: row.row });
  }
  const failures = flushState(storage).failures;
  let written = 0;
  let failed = false;
  let rejected = false;
  let nextBatchRows = maxRows;
  if (rows.length > 0) {
    const startedAt = Date.now();
    try {
      await db
        .prepare(INSERT_AUDIT_ROWS)
        .bind(`[${rows.map((row) => row.row).join(",")}]`)
        .run();
      storage.sql.exec("DELETE FROM pending WHERE id <= ?", rows[rows.length - 1]!.id);
      storage.sql.exec("INSERT OR REPLACE INTO flushes (id, last_at, failures) VALUES (1, ?, 0)", startedAt);
      nextBatchRows = Math.min(ROWS_PER_FLUSH, maxRows * 2);
      saveBatchState(storage, nextBatchRows, 0);
      written = rows.length;
    } catch (error) {
      failed = true;
      new Logger().error("audit_flush_failed", { rows: rows.length, failures: failures + 1, error: String(error) });
      let failuresNow = failures + 1;
      let rowFailuresNow = rowFailures;
      if (rows.length > 1) nextBatchRows = Math.max(1, Math.floor(rows.length / 2));
      else if (await answers(db)) rowFailuresNow += 1;
      if (rows.length === 1 && rowFailuresNow >= MAX_ROW_FAILURES) {
        reject(storage, rows[0]!, startedAt, String(error));
        rejected = true;
        failuresNow = 0;
        rowFailuresNow = 0;
      }
      storage.sql.exec(
        "INSERT OR REPLACE INTO flushes (id, last_at, failures) VALUES (1, ?, ?)",
        startedAt,
        failuresNow,
      );
      saveBatchState(storage, nextBatchRows, rowFailuresNow);
    }
  }
  const pending = pendingCount(storage);
  if (pending > 0) await storage.setAlarm(nextFlushAt(storage));
  return { written, pending, failed, nextBatchRows, rejected };
}
