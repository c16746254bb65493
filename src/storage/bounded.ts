/** Storage bindings with a bounded wait: a call that throws or hangs past it becomes 503 `temporarily_unavailable`. */
import { withinDeadline } from "../deadline";
import { GatewayError, unavailable, type Dependency } from "../gateway-error";

/** Longest wait for one D1, KV or Durable Object call (ms): far above their latency, far below a client's time-out. */
export const STORAGE_WAIT_MS = 5_000;

/** Longest a request waits for a rate-limiting binding before letting the request through (ms). */
export const LIMITER_WAIT_MS = 1_000;

/** Runs storage calls of one dependency within the bound; every failure becomes {@link unavailable}. */
export class StorageCalls {
  constructor(readonly waitMs: number = STORAGE_WAIT_MS) {}

  async run<T>(dependency: Dependency, work: () => Promise<T>): Promise<T> {
    try {
      return await withinDeadline(work, this.waitMs);
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      throw unavailable(dependency, error instanceof Error ? `${error.name}: ${error.message}` : String(error));
    }
  }
}

const RAW_STATEMENT = Symbol("raw statement");

type Bounded = { [RAW_STATEMENT]: D1PreparedStatement };

function boundedStatement(statement: D1PreparedStatement, calls: StorageCalls): D1PreparedStatement {
  const bounded = {
    [RAW_STATEMENT]: statement,
    bind: (...values: unknown[]) => boundedStatement(statement.bind(...values), calls),
    first: (column?: string) =>
      calls.run("d1", () => (column === undefined ? statement.first() : statement.first(column))),
    run: () => calls.run("d1", () => statement.run()),
    all: () => calls.run("d1", () => statement.all()),
    raw: (options?: { columnNames?: boolean }) => calls.run("d1", () => statement.raw(options as never)),
  };
  return bounded as unknown as D1PreparedStatement;
}

/** `d1` whose queries (the calls drizzle makes) answer within the bound or fail as 503. */
export function boundedD1(d1: D1Database, calls: StorageCalls): D1Database {
  const bounded = {
    prepare: (query: string) => {
      try {
        return boundedStatement(d1.prepare(query), calls);
      } catch (error) {
        throw unavailable("d1", String(error));
      }
    },
    batch: (statements: D1PreparedStatement[]) =>
      calls.run("d1", () =>
        d1.batch(statements.map((statement) => (statement as unknown as Bounded)[RAW_STATEMENT] ?? statement)),
      ),
    exec: (query: string) => calls.run("d1", () => d1.exec(query)),
  };
  return bounded as unknown as D1Database;
}

/** `kv` whose reads and writes answer within the bound or fail as 503; a value that is not JSON fails too. */
export function boundedKv(kv: KVNamespace, calls: StorageCalls): KVNamespace {
  const bounded = {
    get: (key: string, options?: unknown) => calls.run("kv", () => kv.get(key, options as never)),
    getWithMetadata: (key: string, options?: unknown) =>
      calls.run("kv", () => kv.getWithMetadata(key, options as never)),
    put: (key: string, value: string, options?: KVNamespacePutOptions) =>
      calls.run("kv", () => kv.put(key, value, options)),
    delete: (key: string) => calls.run("kv", () => kv.delete(key)),
    list: (options?: KVNamespaceListOptions) => calls.run("kv", () => kv.list(options)),
  };
  return bounded as unknown as KVNamespace;
}

/** `bucket` whose reads (list, get with its body, head) answer within the bound or fail as 503. */
export function boundedR2(bucket: R2Bucket, calls: StorageCalls): R2Bucket {
  const bounded = {
    list: (options?: R2ListOptions) => calls.run("r2", () => bucket.list(options)),
    head: (key: string) => calls.run("r2", () => bucket.head(key)),
    get: (key: string) =>
      calls.run("r2", async () => {
        const object = await bucket.get(key);
        if (!object) return null;
        const text = await object.text();
        return { key: object.key, text: () => Promise.resolve(text) };
      }),
  };
  return bounded as unknown as R2Bucket;
}

/** `namespace` whose stubs' method calls (never properties) answer within the bound or fail as 503. */
export function boundedObjects<T extends Rpc.DurableObjectBranded | undefined>(
  namespace: DurableObjectNamespace<T>,
  dependency: Dependency,
  calls: StorageCalls,
): DurableObjectNamespace<T> {
  const stubOf = (stub: DurableObjectStub<T>): DurableObjectStub<T> =>
    new Proxy({} as DurableObjectStub<T>, {
      get: (_, method) => {
        if (method === "then") return undefined;
        if (method === "id" || method === "name") return Reflect.get(stub, method);
        return (...args: unknown[]) =>
          calls.run(dependency, () =>
            (stub as unknown as Record<PropertyKey, (...a: unknown[]) => Promise<unknown>>)[method]!(...args),
          );
      },
    });
  const bounded = {
    idFromName: (name: string) => namespace.idFromName(name),
    idFromString: (id: string) => namespace.idFromString(id),
    newUniqueId: (options?: DurableObjectNamespaceNewUniqueIdOptions) => namespace.newUniqueId(options),
    get: (id: DurableObjectId, options?: DurableObjectNamespaceGetDurableObjectOptions) => {
      try {
        return stubOf(namespace.get(id, options));
      } catch (error) {
        throw unavailable(dependency, String(error));
      }
    },
  };
  return bounded as unknown as DurableObjectNamespace<T>;
}
