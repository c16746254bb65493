// The AuditSink shards: events buffered in the object, written to D1 in one statement at most once a second, kept and
// retried while D1 fails, refused past the bound; shards chosen by request id.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import {
  AUDIT_SHARDS,
  auditShardName,
  flushAuditRows,
  FLUSH_INTERVAL_MS,
  MAX_FLUSH_BYTES,
  MAX_PENDING,
  ROWS_PER_FLUSH,
  type AuditRow,
  type AuditSink,
} from "../src/durable/audit-sink";
import type { AuditRow as StoredRow } from "./helpers";

function row(requestId: string, n: number): AuditRow {
  return {
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

/** `DB` counting the statements it prepares. */
function countingDb(): { db: D1Database; statements: string[] } {
  const statements: string[] = [];
  const db = new Proxy(env.DB, {
    get(target, property) {
      if (property === "prepare")
        return (sql: string) => {
          statements.push(sql);
          return target.prepare(sql);
        };
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { db, statements };
}

const failingDb = {
  prepare: () => {
    throw new Error("D1 is overloaded");
  },
} as unknown as D1Database;

async function storedRows(requestId: string): Promise<StoredRow[]> {
  const { results } = await env.DB.prepare("SELECT * FROM audit_events WHERE request_id = ? ORDER BY id")
    .bind(requestId)
    .all<StoredRow>();
  return results;
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
  it("writes every event appended within one interval in one D1 statement, in order", async () => {
    const stub = shard();
    const lastAt = await justFlushed(stub);
    const requestId = crypto.randomUUID();
    for (let n = 0; n < 5; n++) expect(await stub.append(row(requestId, n))).toBe(true);
    const { db, statements } = countingDb();
    const result = await runInDurableObject(stub, async (_instance: AuditSink, state) => {
      const alarm = await state.storage.getAlarm();
      expect(alarm).toBeGreaterThanOrEqual(lastAt + FLUSH_INTERVAL_MS);
      await state.storage.deleteAlarm();
      return flushAuditRows(state.storage, db);
    });
    expect(result).toEqual({ written: 5, pending: 0, failed: false });
    expect(statements).toHaveLength(1);
    const stored = await storedRows(requestId);
    expect(stored.map(({ id: _id, ...rest }) => rest)).toEqual([0, 1, 2, 3, 4].map((n) => row(requestId, n)));
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

  it("keeps the events while D1 fails, retries later with back-off, and writes them once D1 answers", async () => {
    const stub = shard();
    await justFlushed(stub);
    const requestId = crypto.randomUUID();
    for (let n = 0; n < 3; n++) await stub.append(row(requestId, n));
    const errors = vi.spyOn(console, "error");
    const failed = await runInDurableObject(stub, async (_instance: AuditSink, state) => {
      await state.storage.deleteAlarm();
      const started = Date.now();
      const result = await flushAuditRows(state.storage, failingDb);
      // The failed try counts as the last write: the next waits the first back-off step (2 s) after it.
      expect(await state.storage.getAlarm()).toBeGreaterThanOrEqual(started + 2000);
      await state.storage.deleteAlarm();
      return result;
    });
    expect(failed).toEqual({ written: 0, pending: 3, failed: true });
    expect(errors.mock.calls.some(([line]) => String(line).includes('"audit_flush_failed"'))).toBe(true);
    errors.mockRestore();
    expect(await storedRows(requestId)).toHaveLength(0);

    const retried = await runInDurableObject(stub, (_instance: AuditSink, state) =>
      flushAuditRows(state.storage, env.DB),
    );
    expect(retried).toEqual({ written: 3, pending: 0, failed: false });
    expect(await storedRows(requestId)).toHaveLength(3);
  });

  it(`writes at most ${ROWS_PER_FLUSH} rows per statement and schedules the rest an interval later`, async () => {
    const stub = shard();
    const requestId = crypto.randomUUID();
    await runInDurableObject(stub, (_instance: AuditSink, state) => {
      for (let n = 0; n < ROWS_PER_FLUSH + 20; n++)
        state.storage.sql.exec("INSERT INTO pending (row) VALUES (?)", JSON.stringify(row(requestId, n)));
    });
    const { db, statements } = countingDb();
    const first = await runInDurableObject(stub, async (_instance: AuditSink, state) => {
      const started = Date.now();
      const result = await flushAuditRows(state.storage, db);
      expect(await state.storage.getAlarm()).toBeGreaterThanOrEqual(started + FLUSH_INTERVAL_MS);
      await state.storage.deleteAlarm();
      return result;
    });
    expect(first).toEqual({ written: ROWS_PER_FLUSH, pending: 20, failed: false });
    expect(statements).toHaveLength(1);
    expect(await storedRows(requestId)).toHaveLength(ROWS_PER_FLUSH);
  });

  it(`keeps each statement's JSON under ${MAX_FLUSH_BYTES} characters, however large the rows`, async () => {
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
    const bound: string[] = [];
    const db = new Proxy(env.DB, {
      get(target, property) {
        if (property === "prepare")
          return (sql: string) => {
            const statement = target.prepare(sql);
            return new Proxy(statement, {
              get(inner, name) {
                if (name === "bind")
                  return (...values: unknown[]) => {
                    bound.push(...values.map(String));
                    return inner.bind(...values);
                  };
                const value: unknown = Reflect.get(inner, name);
                return typeof value === "function" ? value.bind(inner) : value;
              },
            });
          };
        const value: unknown = Reflect.get(target, property);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const result = await runInDurableObject(stub, async (_instance: AuditSink, state) => {
      const flushed = await flushAuditRows(state.storage, db);
      await state.storage.deleteAlarm();
      return flushed;
    });
    expect(bound).toHaveLength(1);
    expect(bound[0]!.length).toBeLessThanOrEqual(MAX_FLUSH_BYTES);
    expect(result.written).toBeLessThan(count);
    expect(result.written + result.pending).toBe(count);
    expect(await storedRows(requestId)).toHaveLength(result.written);
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
