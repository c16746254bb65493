/**
 * Bench-only storage for the gateway under bare workerd: a D1 stand-in (workerd's own `d1-api` binding
 * talking to a SQLite-backed Durable Object, seeded with the migrations and the local accounts)
 * and an in-memory KV namespace (the `kv` entrypoint). Never deployed.
 */
import { DurableObject, WorkerEntrypoint } from "cloudflare:workers";
import { seedStatements } from "../../scripts/seed-data";
import { hashPassword } from "../../src/credentials/password";

interface Env {
  DATABASE: DurableObjectNamespace<Database>;
  /** Every migration's SQL, concatenated. */
  MIGRATIONS: string;
  PASSWORD_PEPPER: string;
}

type SqlValue = string | number | null | ArrayBuffer;

interface D1Query {
  sql: string;
  params?: (SqlValue | number[])[] | null;
}

function toSql(value: SqlValue | number[]): SqlValue {
  return Array.isArray(value) ? new Uint8Array(value).buffer : value;
}

function fromSql(value: SqlValue): string | number | null | number[] {
  return value instanceof ArrayBuffer ? Array.from(new Uint8Array(value)) : value;
}

/** One SQLite database answering the D1 wire protocol (`POST /query`, `POST /execute`) as miniflare does. */
export class Database extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(() => this.seed());
  }

  private async seed(): Promise<void> {
    const sql = this.ctx.storage.sql;
    if (sql.exec("SELECT count(*) AS n FROM sqlite_master WHERE name = 'organisations'").one().n) return;
    sql.exec(this.env.MIGRATIONS);
    for (const statement of await seedStatements((password) => hashPassword(password, this.env.PASSWORD_PEPPER)))
      sql.exec(statement);
  }

  private run(query: D1Query, rowsAndColumns: boolean) {
    const sql = this.ctx.storage.sql;
    const started = performance.now();
    const cursor = sql.exec(query.sql, ...(query.params ?? []).map(toSql));
    const rows = Array.from(cursor.raw(), (row) => (row as SqlValue[]).map(fromSql));
    const columns = cursor.columnNames;
    const duration = performance.now() - started;
    const lastRowId = Number(sql.exec("SELECT last_insert_rowid() AS id").one().id);
    // D1's `changes` is SQLite's changes() (rows the statement modified); `rowsWritten` also counts index writes.
    const changes = cursor.rowsWritten > 0 ? Number(sql.exec("SELECT changes() AS n").one().n) : 0;
    return {
      success: true,
      results: rowsAndColumns
        ? { columns, rows }
        : rows.map((row) => Object.fromEntries(columns.map((name, i) => [name, row[i]]))),
      meta: {
        served_by: "gridgate-bench-d1",
        served_by_primary: true,
        duration,
        timings: { sql_duration_ms: duration },
        changes,
        last_row_id: lastRowId,
        changed_db: cursor.rowsWritten > 0,
        size_after: sql.databaseSize,
        rows_read: cursor.rowsRead,
        rows_written: cursor.rowsWritten,
      },
    };
  }

  override async fetch(request: Request): Promise<Response> {
    const body = (await request.json()) as D1Query | D1Query[];
    const queries = Array.isArray(body) ? body : [body];
    const rowsAndColumns = new URL(request.url).searchParams.get("resultsFormat") === "ROWS_AND_COLUMNS";
    try {
      const results = this.ctx.storage.transactionSync(() => queries.map((query) => this.run(query, rowsAndColumns)));
      return Response.json(results, { headers: { "x-cf-d1-session-commit-token": "bench" } });
    } catch (error) {
      return Response.json(
        { success: false, error: error instanceof Error ? error.message : String(error) },
        { status: 500 },
      );
    }
  }
}

/** The D1 service behind the gateway's `DB` binding: every request goes to the one database object. */
export default {
  fetch(request: Request, env: Env): Promise<Response> {
    return env.DATABASE.get(env.DATABASE.idFromName("gridgate")).fetch(request);
  },
};

interface KvEntry {
  value: ArrayBuffer;
  metadata: string | null;
  expiresAt: number | undefined;
}

const kvEntries = new Map<string, KvEntry>();

function liveEntry(key: string): KvEntry | undefined {
  const entry = kvEntries.get(key);
  if (entry?.expiresAt !== undefined && entry.expiresAt <= Date.now() / 1000) {
    kvEntries.delete(key);
    return undefined;
  }
  return entry;
}

/** The KV service behind the gateway's `TOKENS` binding: workerd's KV wire protocol over an in-memory map. */
export class kv extends WorkerEntrypoint<Env> {
  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const key = decodeURIComponent(url.pathname.slice(1));
    if (request.method === "GET" && key === "") {
      const prefix = url.searchParams.get("prefix") ?? "";
      const keys = [...kvEntries.keys()].filter((name) => name.startsWith(prefix) && liveEntry(name)).sort();
      return Response.json({
        keys: keys.map((name) => ({ name, metadata: kvEntries.get(name)!.metadata ?? undefined })),
        list_complete: true,
        cacheStatus: null,
      });
    }
    if (request.method === "GET") {
      const entry = liveEntry(key);
      if (!entry) return new Response("Not Found", { status: 404 });
      const headers = new Headers();
      if (entry.metadata !== null) headers.set("CF-KV-Metadata", entry.metadata);
      if (entry.expiresAt !== undefined) headers.set("CF-Expiration", String(entry.expiresAt));
      return new Response(entry.value, { headers });
    }
    if (request.method === "PUT") {
      const ttl = url.searchParams.get("expiration_ttl");
      const at = url.searchParams.get("expiration");
      const expiresAt =
        ttl !== null ? Math.floor(Date.now() / 1000) + Number(ttl) : at !== null ? Number(at) : undefined;
      kvEntries.set(key, {
        value: await request.arrayBuffer(),
        metadata: request.headers.get("CF-KV-Metadata"),
        expiresAt,
      });
      return new Response(null);
    }
    if (request.method === "DELETE") {
      kvEntries.delete(key);
      return new Response(null);
    }
    if (request.method === "POST" && key === "bulk/get") {
      // A bulk read (`get([keys], …)`): `{keys, type}` in, `{<key>: value or null}` out.
      const { keys, type } = await request.json<{ keys: string[]; type?: string }>();
      const values: Record<string, unknown> = {};
      for (const name of keys) {
        const entry = liveEntry(name);
        const text = entry ? new TextDecoder().decode(entry.value) : null;
        values[name] = text !== null && type === "json" ? JSON.parse(text) : text;
      }
      return Response.json(values);
    }
    return new Response("Method Not Allowed", { status: 405 });
  }
}
