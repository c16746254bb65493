// Fakes of the gateway's dependencies for the fault-injection tests: D1, KV, R2, queues, Durable Object namespaces and bindings that throw, hang or answer garbage.
import { env } from "cloudflare:workers";
import type { Bindings } from "../src/config";
import type { Services } from "../src/services";
import { location } from "./locations";

/** How a faulty call fails: it throws, it never answers, or it answers a value of the wrong shape. */
export type Fault = "throws" | "hangs" | "garbage";

/** A switch shared by the fakes of one test: `fault` undefined means every call goes to the real binding. */
export interface FaultSwitch {
  fault: Fault | undefined;
  /** Which calls fail (default all): a D1 query's SQL, a KV key and operation, a Durable Object method. */
  when?: (call: string) => boolean;
  /** How many calls failed so far. */
  failed: number;
}

/** A switch, initially off unless `fault` is given. */
export function faultSwitch(fault?: Fault, when?: (call: string) => boolean): FaultSwitch {
  return { fault, when, failed: 0 };
}

const never = <T>(): Promise<T> => new Promise<T>(() => {});

/** The failure of one call, or undefined when the switch lets it through. */
function failure<T>(faults: FaultSwitch, call: string, garbage: () => T): Promise<T> | undefined {
  if (faults.fault === undefined || (faults.when && !faults.when(call))) return undefined;
  faults.failed += 1;
  if (faults.fault === "throws") return Promise.reject(new Error(`injected failure: ${call}`));
  if (faults.fault === "hangs") return never();
  return Promise.resolve(garbage());
}

/** A malformed D1 row: the wrong types in every column. */
const MALFORMED_ROW = { id: "x", identifier: 7, plan: null, status: 42, kid: 1, ciphertext: {} };

/** `env.DB` whose statements (selected by their SQL), on the binding and in its sessions, throw, hang or return malformed rows. */
export function faultyD1(faults: FaultSwitch, real: D1Database = env.DB): D1Database {
  const statement = (sql: string, inner: D1PreparedStatement): D1PreparedStatement =>
    ({
      bind: (...values: unknown[]) => statement(sql, inner.bind(...values)),
      first: (column?: string) =>
        failure(faults, sql, () => MALFORMED_ROW) ?? (column === undefined ? inner.first() : inner.first(column)),
      run: () => failure(faults, sql, () => ({ success: true, meta: {}, results: [] })) ?? inner.run(),
      all: () => failure(faults, sql, () => ({ success: true, meta: {}, results: [MALFORMED_ROW] })) ?? inner.all(),
      raw: (options?: { columnNames?: boolean }) =>
        failure(faults, sql, () => [["x", 7, null, 42, 1, {}, "y", "z", null, 3, 4, 5, 6, 7, 8]]) ??
        inner.raw(options as never),
    }) as unknown as D1PreparedStatement;
  const over = (target: Pick<D1Database, "prepare" | "batch">) => ({
    prepare: (sql: string) => statement(sql, target.prepare(sql)),
    batch: (statements: D1PreparedStatement[]) => failure(faults, "batch", () => []) ?? target.batch(statements),
  });
  return {
    ...over(real),
    exec: (sql: string) => real.exec(sql),
    // A session (its reads may come from a replica in production) fails like the binding itself.
    withSession: (constraint: string) => {
      const session = real.withSession(constraint);
      return { ...over(session), getBookmark: () => session.getBookmark() };
    },
  } as unknown as D1Database;
}

/**
 * `env.TOKENS` whose calls (selected by `"<operation> <key>"`, e.g. `"put refresh:…"`) throw, hang or (reads)
 * return garbage: a JSON value of the wrong shape for `json` reads, text that is not JSON otherwise.
 */
export function faultyKv(faults: FaultSwitch, real: KVNamespace = env.TOKENS): KVNamespace {
  const typeOf = (options: unknown) =>
    typeof options === "string" ? options : (options as { type?: string } | undefined)?.type;
  return {
    get: (key: string | string[], options?: unknown) => {
      const garbage = () => (typeOf(options) === "json" ? { v: 99, garbage: true } : "}{not json");
      if (!Array.isArray(key)) return failure(faults, `get ${key}`, garbage) ?? real.get(key, options as never);
      // A bulk read fails as a whole when any of its keys is selected; its garbage is garbage for every key.
      const calls = key.map((name) => `get ${name}`);
      const call = calls.find((name) => !faults.when || faults.when(name)) ?? calls[0]!;
      return (
        failure(faults, call, () => new Map(key.map((name) => [name, garbage()]))) ?? real.get(key, options as never)
      );
    },
    getWithMetadata: (key: string, options?: unknown) => real.getWithMetadata(key, options as never),
    put: (key: string, value: string, options?: KVNamespacePutOptions) =>
      failure(faults, `put ${key}`, () => undefined) ?? real.put(key, value, options),
    delete: (key: string) => failure(faults, `delete ${key}`, () => undefined) ?? real.delete(key),
    list: (options?: KVNamespaceListOptions) => real.list(options),
  } as unknown as KVNamespace;
}

/** A Durable Object namespace whose stubs' methods (selected by name) throw, hang or answer garbage. */
export function faultyObjects<T extends Rpc.DurableObjectBranded | undefined>(
  faults: FaultSwitch,
  real: DurableObjectNamespace<T>,
): DurableObjectNamespace<T> {
  return {
    idFromName: (name: string) => real.idFromName(name),
    idFromString: (id: string) => real.idFromString(id),
    newUniqueId: () => real.newUniqueId(),
    get: (id: DurableObjectId) => {
      const stub = real.get(id) as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
      return new Proxy(
        {},
        {
          get: (_, method: string) =>
            method === "then"
              ? undefined
              : (...args: unknown[]) => failure(faults, method, () => ({ garbage: true })) ?? stub[method]!(...args),
        },
      );
    },
  } as unknown as DurableObjectNamespace<T>;
}

/** An audit queue whose sends throw, hang or (garbage) claim success while dropping the message. */
export function faultyQueue(faults: FaultSwitch, real: Queue): Queue {
  return {
    send: (body: unknown, options?: QueueSendOptions) =>
      failure(faults, "send", () => undefined) ?? real.send(body, options),
    sendBatch: (messages: Iterable<MessageSendRequest>, options?: QueueSendBatchOptions) =>
      failure(faults, "sendBatch", () => undefined) ?? real.sendBatch(messages, options),
  } as unknown as Queue;
}

/** The audit bucket whose calls (selected by operation: `list`, `get`, `head`, `put`) throw, hang or answer garbage. */
export function faultyR2(faults: FaultSwitch, real: R2Bucket = env.AUDIT_BUCKET): R2Bucket {
  const garbage = () => ({ objects: [{ key: "events/x", customMetadata: { organisations: 5 } }], truncated: false });
  return {
    list: (options?: R2ListOptions) => failure(faults, "list", garbage) ?? real.list(options),
    get: (key: string) => failure(faults, "get", () => ({ key, text: async () => "}{not json" })) ?? real.get(key),
    head: (key: string) => failure(faults, "head", () => null) ?? real.head(key),
    put: (key: string, value: string, options?: R2PutOptions) =>
      failure(faults, "put", () => null) ?? real.put(key, value, options),
  } as unknown as R2Bucket;
}

/** A rate-limiting binding that throws or hangs while `faults` is on, else allows everything. */
export function faultyRateLimit(faults: FaultSwitch): RateLimit {
  return {
    limit: () => failure(faults, "limit", () => ({ success: true })) ?? Promise.resolve({ success: true }),
  } as unknown as RateLimit;
}

/** A `METRICS` dataset whose writes throw while `faults` is on. */
export function faultyMetrics(faults: FaultSwitch): AnalyticsEngineDataset & { written: number } {
  const dataset = {
    written: 0,
    writeDataPoint: () => {
      if (faults.fault !== undefined) {
        faults.failed += 1;
        throw new Error("injected failure: writeDataPoint");
      }
      dataset.written += 1;
    },
  };
  return dataset;
}

/** A gateway over faulty bindings, with short waits so a hanging fake turns into 503 at once. */
export interface FaultyApp {
  services: Services;
  clock: { now: number };
  request(path: string, init?: RequestInit): Promise<Response>;
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
}

/** Waits used by {@link faultyApp}: a hanging call fails after this many ms (long enough for any real call on a busy machine). */
const TEST_WAIT_MS = 1_000;
/** The rate-limiting bindings' wait in {@link faultyApp}: a slow real limiter only lets a request through. */
const TEST_LIMITER_WAIT_MS = 100;

/** An app whose one gateway runs over `bindings`, reading `clock.now`, with {@link TEST_WAIT_MS} waits. */
export function faultyApp(bindings: Bindings): FaultyApp {
  const clock = { now: Date.now() };
  const app = location(clock, bindings, { storageWaitMs: TEST_WAIT_MS, limiterWaitMs: TEST_LIMITER_WAIT_MS });
  return { ...app, clock };
}
