/** The `AuditSink` Durable Object: one shard of the audit trail's fallback buffer, written to R2 at most once a second. */
import { DurableObject } from "cloudflare:workers";
import { fnv1a32 } from "../digest";
import { Logger } from "../log";
import { r2AuditStore, type AuditRow, type AuditStore } from "./objects";

/** Shards (`audit-0` … `audit-15`) taking the events a queue refused (docs/capacity.md § 8). */
export const AUDIT_SHARDS = 16;
/** A shard writes at most once per this interval; the first event of an idle shard is written at once. */
export const FLUSH_INTERVAL_MS = 1000;
/** Rows per write, at most, of at most {@link MAX_FLUSH_BYTES} in all. */
export const ROWS_PER_FLUSH = 2000;
/** UTF-8 bytes (not characters) of JSON rows per write, at most. */
export const MAX_FLUSH_BYTES = 1_000_000;
/** Failed tries of a one-row batch, while the store answers, before that row is set aside in `rejected`. */
export const MAX_ROW_FAILURES = 5;
/** Rows a shard keeps in `rejected`, at most; a row set aside beyond it is only logged. */
export const MAX_REJECTED = 1000;
/** Events a shard keeps while the store refuses its writes; past it new events are refused. */
export const MAX_PENDING = 100_000;
const RETRY_BASE_MS = 2000;
const RETRY_MAX_MS = 60_000;

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

/** What one flush did; `nextBatchRows` is the most the next try takes, `rejected` whether it set its row aside. */
export interface FlushResult {
  written: number;
  pending: number;
  failed: boolean;
  nextBatchRows: number;
  rejected: boolean;
}

/** One shard: buffers events in SQLite; its alarm writes them to R2 at least once (docs/storage.md § AuditSink). */
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

  override async alarm(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      await flushAuditRows(this.ctx.storage, r2AuditStore(this.env.AUDIT_BUCKET));
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

/** One flush of a shard into `store` (the alarm's work, exported for tests); schedules the next alarm if rows remain. */
export async function flushAuditRows(storage: DurableObjectStorage, store: AuditStore): Promise<FlushResult> {
  const { maxRows, rowFailures } = batchState(storage);
  const rows: { id: number; row: string }[] = [];
  let bytes = 0;
  // SQLite measures each row's UTF-8 bytes: no encoding in JS.
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
      await store.write(rows.map((row) => JSON.parse(row.row) as AuditRow));
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
      else if (await store.answers()) rowFailuresNow += 1;
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
