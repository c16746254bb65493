// The AuditSink shards (the audit trail's fallback buffer): events buffered in the object, written to R2 in one object
// at most once a second, kept and retried while R2 fails, refused past the bound; shards chosen by request id.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { r2AuditStore, type AuditRow, type AuditStore } from "../src/audit/objects";
import {
  AUDIT_SHARDS,
  auditShardName,
  flushAuditRows,
  FLUSH_INTERVAL_MS,
  MAX_FLUSH_BYTES,
  MAX_PENDING,
  MAX_REJECTED,
  MAX_ROW_FAILURES,
  ROWS_PER_FLUSH,
  type AuditSink,
  type FlushResult,
} from "../src/audit/sink";
import { storedAuditRows } from "./helpers";

function row(requestId: string, n: number): AuditRow {
  return {
    id: `0190a000-0000-7000-8000-${String(n).padStart(12, "0")}`,
    at: 1_700_000_000_000 + n,
    event: "login.success",
    outcome: "success",
    member_id: n,
    organisation_id: 1,
    ip: "192.0.2.1",
    user_agent: "audit-sink-test/1.0",
    request_id: requestId,
    trace_id: null,
    detail: n % 2 ? JSON.stringify({ reason: `r${n}`, quote: `it's "quoted"` }) : null,
  };
}

/** A shard of its own per test, its alarm cleared so the test decides when it flushes. */
function shard(): DurableObjectStub<AuditSink> {
  return env.AUDIT_SINK.get(env.AUDIT_SINK.idFromName(`test-${crypto.randomUUID()}`));
}

const r2 = r2AuditStore(env.AUDIT_BUCKET);

/** The R2 store, with `onWrite` seeing every batch before R2 does (it may throw to refuse the batch). */
function storeWatching(onWrite: (rows: AuditRow[]) => void): AuditStore {
  return {
    write: async (rows) => {
      onWrite(rows);
      await r2.write(rows);
    },
    answers: () => r2.answers(),
  };
}

/** The R2 store counting its writes. */
function countingStore(): { store: AuditStore; writes: AuditRow[][] } {
  const writes: AuditRow[][] = [];
  return { store: storeWatching((rows) => writes.push(rows)), writes };
}

const failingStore: AuditStore = {
  write: async () => {
    throw new Error("R2 is down");
  },
  answers: async () => false,
};

/** The store refusing every batch that holds a row of request `marker` (a poison row); the rest reach R2. */
function refusingStore(marker: string): AuditStore {
  return storeWatching((rows) => {
    if (rows.some((stored) => stored.request_id === marker)) throw new Error("the batch was refused");
  });
}

/** UTF-8 bytes of `rows` as stored: one JSON line each. */
function storedBytes(rows: AuditRow[]): number {
  return new TextEncoder().encode(rows.map((stored) => `${JSON.stringify(stored)}\n`).join("")).byteLength;
}

/** Runs one flush of the shard into `store`, its next alarm cleared so the test decides when it flushes again. */
function flushOnce(stub: DurableObjectStub<AuditSink>, store: AuditStore): Promise<FlushResult> {
  return runInDurableObject(stub, async (_instance: AuditSink, state) => {
    const result = await flushAuditRows(state.storage, store);
    await state.storage.deleteAlarm();
    return result;
  });
}

function insertPending(stub: DurableObjectStub<AuditSink>, rows: AuditRow[]): Promise<void> {
  return runInDurableObject(stub, (_instance: AuditSink, state) => {
    for (const pending of rows) state.storage.sql.exec("INSERT INTO pending (row) VALUES (?)", JSON.stringify(pending));
  });
}

function rejectedRows(stub: DurableObjectStub<AuditSink>): Promise<{ id: number; row: string; error: string }[]> {
  return runInDurableObject(stub, (_instance: AuditSink, state) =>
    state.storage.sql
      .exec<{ id: number; row: string; error: string }>("SELECT id, row, error FROM rejected ORDER BY id")
      .toArray(),
  );
}

async function storedRows(requestId: string): Promise<AuditRow[]> {
  return (await storedAuditRows()).filter((stored) => stored.request_id === requestId);
}

/**
 * Marks the shard as having written a minute from now, so appends schedule its alarm after that instead of
 * flushing at once, and the test runs the flush itself (however slowly the test runs).
 */
async function justFlushed(stub: DurableObjectStub<AuditSink>): Promise<number> {
  return runInDurableObject(stub, (_instance: AuditSink, state) => {
    const lastAt = Date.now() + 60_000;
    state.storage.sql.exec("INSERT OR REPLACE INTO flushes (id, last_at, failures) VALUES (1, ?, 0)", lastAt);
    return lastAt;
  });
}

describe("AuditSink", () => {
  it("writes every event appended within one interval in one R2 object, in order", async () => {
    const stub = shard();
    const lastAt = await justFlushed(stub);
    const requestId = crypto.randomUUID();
    for (let n = 0; n < 5; n++) expect(await stub.append(row(requestId, n))).toBe(true);
    const { store, writes } = countingStore();
    const result = await runInDurableObject(stub, async (_instance: AuditSink, state) => {
      const alarm = await state.storage.getAlarm();
      expect(alarm).toBeGreaterThanOrEqual(lastAt + FLUSH_INTERVAL_MS);
      await state.storage.deleteAlarm();
      return flushAuditRows(state.storage, store);
    });
    expect(result).toMatchObject({ written: 5, pending: 0, failed: false, rejected: false });
    expect(writes).toHaveLength(1);
    const stored = await storedRows(requestId);
    expect(stored).toEqual([0, 1, 2, 3, 4].map((n) => row(requestId, n)));
  });

  it("flushes the first event of an idle shard at once, by its alarm", async () => {
    const stub = shard();
    const requestId = crypto.randomUUID();
    expect(await stub.append(row(requestId, 1))).toBe(true);
    const alarm = await runInDurableObject(stub, (_instance: AuditSink, state) => state.storage.getAlarm());
    // Either still due (scheduled no later than now) or already run, the row written.
    if (alarm !== null) expect(alarm).toBeLessThanOrEqual(Date.now());
    else expect(await storedRows(requestId)).toHaveLength(1);
  });

  it("keeps the events while R2 fails, retries later with back-off, and writes them once R2 answers", async () => {
    const stub = shard();
    await justFlushed(stub);
    const requestId = crypto.randomUUID();
    for (let n = 0; n < 3; n++) await stub.append(row(requestId, n));
    const errors = vi.spyOn(console, "error");
    const failed = await runInDurableObject(stub, async (_instance: AuditSink, state) => {
      await state.storage.deleteAlarm();
      const started = Date.now();
      const result = await flushAuditRows(state.storage, failingStore);
      // The failed try counts as the last write: the next waits the first back-off step (2 s) after it.
      expect(await state.storage.getAlarm()).toBeGreaterThanOrEqual(started + 2000);
      await state.storage.deleteAlarm();
      return result;
    });
    expect(failed).toMatchObject({ written: 0, pending: 3, failed: true });
    expect(errors.mock.calls.some(([line]) => String(line).includes('"audit_flush_failed"'))).toBe(true);
    errors.mockRestore();
    expect(await storedRows(requestId)).toHaveLength(0);

    // The failed batch of 3 is halved: the retry writes 1 row, the next 2 (the batch doubles after a success).
    expect((await flushOnce(stub, r2)).written).toBe(1);
    expect(await flushOnce(stub, r2)).toMatchObject({ written: 2, pending: 0, failed: false });
    expect(await storedRows(requestId)).toHaveLength(3);
  });

  it(`writes at most ${ROWS_PER_FLUSH} rows per write and schedules the rest an interval later`, async () => {
    const stub = shard();
    const requestId = crypto.randomUUID();
    await runInDurableObject(stub, (_instance: AuditSink, state) => {
      for (let n = 0; n < ROWS_PER_FLUSH + 20; n++)
        state.storage.sql.exec("INSERT INTO pending (row) VALUES (?)", JSON.stringify(row(requestId, n)));
    });
    const { store, writes } = countingStore();
    const first = await runInDurableObject(stub, async (_instance: AuditSink, state) => {
      const started = Date.now();
      const result = await flushAuditRows(state.storage, store);
      expect(await state.storage.getAlarm()).toBeGreaterThanOrEqual(started + FLUSH_INTERVAL_MS);
      await state.storage.deleteAlarm();
      return result;
    });
    expect(first).toMatchObject({ written: ROWS_PER_FLUSH, pending: 20, failed: false });
    expect(writes).toHaveLength(1);
    expect(await storedRows(requestId)).toHaveLength(ROWS_PER_FLUSH);
  });

  it(`keeps each write under ${MAX_FLUSH_BYTES} bytes of JSON, however large the rows`, async () => {
    const stub = shard();
    const requestId = crypto.randomUUID();
    const large = (n: number): AuditRow => ({
      ...row(requestId, n),
      ip: "i".repeat(512),
      user_agent: "u".repeat(512),
      detail: JSON.stringify({ reason: "d".repeat(1000) }),
    });
    const count = Math.ceil(MAX_FLUSH_BYTES / JSON.stringify(large(0)).length) + 10;
    await runInDurableObject(stub, (_instance: AuditSink, state) => {
      for (let n = 0; n < count; n++)
        state.storage.sql.exec("INSERT INTO pending (row) VALUES (?)", JSON.stringify(large(n)));
    });
    const { store, writes } = countingStore();
    const result = await runInDurableObject(stub, async (_instance: AuditSink, state) => {
      const flushed = await flushAuditRows(state.storage, store);
      await state.storage.deleteAlarm();
      return flushed;
    });
    expect(writes).toHaveLength(1);
    expect(storedBytes(writes[0]!)).toBeLessThanOrEqual(MAX_FLUSH_BYTES);
    expect(result.written).toBeLessThan(count);
    expect(result.written + result.pending).toBe(count);
    expect(await storedRows(requestId)).toHaveLength(result.written);
  });

  it(`counts UTF-8 bytes, not characters: non-ASCII rows stay under ${MAX_FLUSH_BYTES} bytes per write`, async () => {
    const stub = shard();
    const requestId = crypto.randomUUID();
    // 512 three-byte characters per user agent: ≈ 1.9 bytes of JSON per character.
    const wide = (n: number): AuditRow => ({ ...row(requestId, n), user_agent: "€".repeat(512) });
    const rowChars = JSON.stringify(wide(0)).length;
    const count = Math.floor(MAX_FLUSH_BYTES / (rowChars + 1)) - 5;
    expect(count * (rowChars + 1)).toBeLessThan(MAX_FLUSH_BYTES);
    await insertPending(
      stub,
      Array.from({ length: count }, (_, n) => wide(n)),
    );
    const { store, writes } = countingStore();
    const result = await flushOnce(stub, store);
    expect(writes).toHaveLength(1);
    expect(storedBytes(writes[0]!)).toBeLessThanOrEqual(MAX_FLUSH_BYTES);
    expect(result.written).toBeGreaterThan(0);
    expect(result.written).toBeLessThan(count);
    expect(result.written + result.pending).toBe(count);
    expect(await storedRows(requestId)).toHaveLength(result.written);
  });

  it("halves the batch after each failed try while R2 is down, sets nothing aside, and grows it back after", async () => {
    const stub = shard();
    const requestId = crypto.randomUUID();
    await insertPending(
      stub,
      Array.from({ length: 8 }, (_, n) => row(requestId, n)),
    );
    const errors = vi.spyOn(console, "error");
    const sizes: number[] = [];
    for (let attempt = 0; attempt < 3 + MAX_ROW_FAILURES + 2; attempt++) {
      const result = await flushOnce(stub, failingStore);
      expect(result).toMatchObject({ written: 0, pending: 8, failed: true, rejected: false });
      sizes.push(result.nextBatchRows);
    }
    expect(sizes.slice(0, 4)).toEqual([4, 2, 1, 1]);
    expect(sizes.every((size, n) => n < 3 || size === 1)).toBe(true);
    expect(errors.mock.calls.some(([line]) => String(line).includes('"audit_row_rejected"'))).toBe(false);
    errors.mockRestore();
    expect(await rejectedRows(stub)).toEqual([]);
    // The back-off is unchanged: the failures count on, the next try waits up to a minute.
    const failures = await runInDurableObject(
      stub,
      (_instance: AuditSink, state) =>
        state.storage.sql.exec<{ failures: number }>("SELECT failures FROM flushes WHERE id = 1").one().failures,
    );
    expect(failures).toBe(3 + MAX_ROW_FAILURES + 2);

    const written: number[] = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      const result = await flushOnce(stub, r2);
      written.push(result.written);
      if (result.pending === 0) break;
    }
    expect(written).toEqual([1, 2, 4, 1]);
    expect(await storedRows(requestId)).toHaveLength(8);
  });

  it(`sets aside a row the store refuses alone ${MAX_ROW_FAILURES} times, and the rows behind it flow`, async () => {
    const stub = shard();
    const requestId = crypto.randomUUID();
    const poison = `poison-${crypto.randomUUID()}`;
    await insertPending(stub, [
      row(requestId, 0),
      row(requestId, 1),
      row(poison, 2),
      row(requestId, 3),
      row(requestId, 4),
    ]);
    const store = refusingStore(poison);
    const errors = vi.spyOn(console, "error");
    const results: FlushResult[] = [];
    for (let attempt = 0; attempt < 20; attempt++) {
      const result = await flushOnce(stub, store);
      results.push(result);
      if (result.pending === 0) break;
    }
    // 5 rows fail → 2 written → 3 fail → the poison row alone fails 5 times, set aside → 1 → 1.
    expect(results.map((result) => result.written)).toEqual([0, 2, 0, 0, 0, 0, 0, 0, 1, 1]);
    expect(results.filter((result) => result.rejected)).toHaveLength(1);
    expect(results[7]).toMatchObject({ failed: true, rejected: true, pending: 2 });
    expect((await storedRows(requestId)).map((stored) => stored.member_id)).toEqual([0, 1, 3, 4]);
    expect(await storedRows(poison)).toEqual([]);
    const [rejected, ...more] = await rejectedRows(stub);
    expect(more).toEqual([]);
    expect(JSON.parse(rejected!.row)).toEqual(row(poison, 2));
    expect(rejected!.error).toContain("the batch was refused");
    const lines = errors.mock.calls
      .map(([line]) => String(line))
      .filter((line) => line.includes('"audit_row_rejected"'));
    errors.mockRestore();
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ event: "audit_row_rejected", request_id: poison, kept: true });
  });

  it(`keeps at most ${MAX_REJECTED} rows set aside, logging the others`, async () => {
    const stub = shard();
    const poison = `poison-${crypto.randomUUID()}`;
    await runInDurableObject(stub, (_instance: AuditSink, state) => {
      for (let id = 1; id <= MAX_REJECTED; id++)
        state.storage.sql.exec("INSERT INTO rejected (id, row, at, error) VALUES (?, '{}', 0, 'x')", -id);
      state.storage.sql.exec("INSERT INTO batches (id, max_rows, row_failures) VALUES (1, 1, ?)", MAX_ROW_FAILURES - 1);
    });
    await insertPending(stub, [row(poison, 0)]);
    const errors = vi.spyOn(console, "error");
    expect(await flushOnce(stub, refusingStore(poison))).toMatchObject({ pending: 0, rejected: true });
    const lines = errors.mock.calls
      .map(([line]) => String(line))
      .filter((line) => line.includes('"audit_row_rejected"'));
    errors.mockRestore();
    expect(JSON.parse(lines[0]!)).toMatchObject({ request_id: poison, kept: false });
    expect(await rejectedRows(stub)).toHaveLength(MAX_REJECTED);
  });

  it(`refuses new events once ${MAX_PENDING} are pending, keeping the oldest`, async () => {
    const stub = shard();
    await justFlushed(stub);
    await runInDurableObject(stub, (_instance: AuditSink, state) => {
      state.storage.sql.exec("INSERT INTO pending (id, row) VALUES (1, ?)", JSON.stringify(row("oldest", 0)));
      state.storage.sql.exec("INSERT INTO pending (id, row) VALUES (?, ?)", MAX_PENDING, JSON.stringify(row("x", 1)));
    });
    expect(await stub.append(row("refused", 2))).toBe(false);
    const kept = await runInDurableObject(stub, async (_instance: AuditSink, state) => {
      await state.storage.deleteAlarm();
      return state.storage.sql
        .exec<{ row: string }>("SELECT row FROM pending ORDER BY id")
        .toArray()
        .map((stored) => (JSON.parse(stored.row) as AuditRow).request_id);
    });
    expect(kept).toEqual(["oldest", "x"]);
  });

  it(`spreads request ids over ${AUDIT_SHARDS} shards`, () => {
    const names = new Map<string, number>();
    for (let i = 0; i < 1600; i++) {
      const name = auditShardName(crypto.randomUUID());
      names.set(name, (names.get(name) ?? 0) + 1);
    }
    expect(names.size).toBe(AUDIT_SHARDS);
    for (const count of names.values()) expect(count).toBeGreaterThan(40);
    expect(auditShardName("same")).toBe(auditShardName("same"));
  });
});
