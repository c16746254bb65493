// Helpers that simulate Cloudflare locations: separate gateways (own isolate state, own clock), optionally over a stale KV view.
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { createWorker } from "../src/worker";
import type { Bindings } from "../src/config";
import type { FailureRecord, LoginBackoff } from "../src/credentials/login-backoff";
import type { RefreshFamily } from "../src/tokens/refresh-family";
import { REVOCATION_LAYOUT, revocationShard } from "../src/revocation/record";
import { createServices, type Services, type ServiceOverrides } from "../src/services";
import { GATEWAY, problem, randomIp } from "./helpers";

import { sha256Hex } from "../src/digest";

/** A shared, settable clock (ms since the epoch). */
export interface Clock {
  now: number;
}

/** One simulated location: its own gateway (caches, in-flight maps), the shared bindings, a clock. */
export interface Location {
  services: Services;
  request(path: string, init?: RequestInit): Promise<Response>;
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
}

/** A location over `bindings`, reading `clock`; `overrides` shorten the gateway's storage and limiter waits. */
export function location(
  clock: Clock,
  bindings: Bindings = env,
  overrides: Omit<ServiceOverrides, "now"> = {},
): Location {
  const gateway = createServices(bindings, { ...overrides, now: () => clock.now });
  const app = createWorker({ servicesFor: () => gateway });
  const request = async (path: string, init?: RequestInit): Promise<Response> => {
    const ctx = createExecutionContext();
    const response = await app.fetch(new Request(GATEWAY + path, init), bindings, ctx);
    await waitOnExecutionContext(ctx);
    return response;
  };
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    request(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "CF-Connecting-IP": randomIp(), ...headers },
      body: JSON.stringify(body),
    });
  return { services: gateway, request, post };
}

/**
 * A view of TOKENS as a far location's edge cache may serve it: every key in `frozen` reads as it was
 * when frozen (null: absent), whatever was written since; other keys and all writes go to the real namespace.
 */
export function staleKv(frozen: Map<string, string | null>): KVNamespace {
  const real = env.TOKENS;
  const get = async (key: string | string[], options?: unknown): Promise<unknown> => {
    if (Array.isArray(key)) {
      // A bulk read: each key as a single read would see it.
      const values = await Promise.all(key.map((one) => get(one, options)));
      return new Map(key.map((one, index) => [one, values[index]]));
    }
    if (!frozen.has(key)) return real.get(key, options as KVNamespaceGetOptions<"text">);
    const value = frozen.get(key) ?? null;
    const type = typeof options === "string" ? options : (options as { type?: string } | undefined)?.type;
    return value !== null && type === "json" ? JSON.parse(value) : value;
  };
  return new Proxy(real, {
    get(target, property) {
      if (property === "get") return get;
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * `env.DB` (and its sessions) that runs `hook` once, around the `occurrence`th statement whose SQL matches `pattern`:
 * before it runs, or after it answered (a request of another location slipping in between a read and what follows it,
 * or before a write).
 */
export function hookedD1(
  pattern: RegExp,
  when: "before" | "after",
  hook: () => Promise<void>,
  occurrence = 1,
): D1Database {
  let matches = 0;
  const real = new WeakMap<object, D1PreparedStatement>();
  const wrap = (statement: D1PreparedStatement, query: string): D1PreparedStatement => {
    const around = async <T>(call: () => Promise<T>): Promise<T> => {
      const fire = pattern.test(query) && ++matches === occurrence;
      if (fire && when === "before") await hook();
      const result = await call();
      if (fire && when === "after") await hook();
      return result;
    };
    const wrapped = {
      bind: (...values: unknown[]) => wrap(statement.bind(...values), query),
      first: (column?: string) => around(() => (column === undefined ? statement.first() : statement.first(column))),
      run: () => around(() => statement.run()),
      all: () => around(() => statement.all()),
      raw: (options?: { columnNames?: boolean }) => around(() => statement.raw(options as never)),
    };
    real.set(wrapped, statement);
    return wrapped as unknown as D1PreparedStatement;
  };
  const over = (target: Pick<D1Database, "prepare" | "batch">) => ({
    prepare: (query: string) => wrap(target.prepare(query), query),
    batch: (statements: D1PreparedStatement[]) =>
      target.batch(statements.map((statement) => real.get(statement) ?? statement)),
  });
  const db = {
    ...over(env.DB),
    exec: (query: string) => env.DB.exec(query),
    withSession: (constraint: string) => {
      const session = env.DB.withSession(constraint);
      return { ...over(session), getBookmark: () => session.getBookmark() };
    },
  };
  return db as unknown as D1Database;
}

/**
 * A Durable Object namespace that runs `hook` once, after the `occurrence`th call of `method` answered and before its
 * caller gets the answer (e.g. a revocation landing just after a login asked the `Revocations` shards for bookmarks).
 */
export function hookedObjects<T extends Rpc.DurableObjectBranded | undefined>(
  real: DurableObjectNamespace<T>,
  method: string,
  hook: () => Promise<void>,
  occurrence = 1,
): DurableObjectNamespace<T> {
  let calls = 0;
  const call = async (
    stub: Record<string, (...args: unknown[]) => Promise<unknown>>,
    name: string,
    args: unknown[],
  ) => {
    const answer = await stub[name]!(...args);
    if (name === method && ++calls === occurrence) await hook();
    return answer;
  };
  return {
    idFromName: (name: string) => real.idFromName(name),
    get: (id: DurableObjectId) => {
      const stub = real.get(id) as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
      const methods = {
        get: (_: object, name: string) =>
          name === "then" ? undefined : (...args: unknown[]) => call(stub, name, args),
      };
      return new Proxy({}, methods);
    },
  } as unknown as DurableObjectNamespace<T>;
}

/** Reads the current values of `keys`, to freeze them in a {@link staleKv}. */
export async function freeze(keys: string[]): Promise<Map<string, string | null>> {
  return new Map(await Promise.all(keys.map(async (key) => [key, await env.TOKENS.get(key)] as const)));
}

/** The `LoginBackoff` object of an (already normalised) email. */
async function backoffObject(email: string): Promise<DurableObjectStub<LoginBackoff>> {
  return env.LOGIN_BACKOFF.get(env.LOGIN_BACKOFF.idFromName(await sha256Hex(email)));
}

/** The live failure record of an email, read from its object. */
export async function backoffRecord(email: string): Promise<FailureRecord | undefined> {
  return (await backoffObject(email)).record(Date.now());
}

/** Writes an email's failure record straight into its object's storage. */
export async function seedBackoff(email: string, record: FailureRecord): Promise<void> {
  await runInDurableObject(await backoffObject(email), async (_instance, state) => {
    state.storage.sql.exec(
      "INSERT OR REPLACE INTO failures (id, failures, locked_until, expires_at) VALUES (1, ?, ?, ?)",
      record.failures,
      record.lockedUntil,
      record.expiresAt,
    );
  });
}

/** The `RefreshFamily` object of a family. */
export function familyObject(familyId: string): DurableObjectStub<RefreshFamily> {
  return env.REFRESH_FAMILIES.get(env.REFRESH_FAMILIES.idFromName(familyId));
}

/** Waits (≤ 3 s) until KV's record of the member's revocation shard names `memberId`: a shard writes at most once a second. */
export async function revocationPublished(memberId: number): Promise<void> {
  const key = REVOCATION_LAYOUT.key(revocationShard(`m:${memberId}`));
  for (let waited = 0; waited < 3000; waited += 100) {
    const record = await env.TOKENS.get<{ members: Record<string, number> }>(key, "json");
    if (record?.members[String(memberId)] !== undefined) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`member ${memberId} never appeared in ${key}`);
}

/** A revoked access token's answer: 401 `invalid_token` with its RFC 6750 challenge. */
export async function expectRevoked(response: Response): Promise<void> {
  expect(response.status).toBe(401);
  expect(response.headers.get("WWW-Authenticate")).toMatch(/error="invalid_token"/);
  expect((await problem(response)).code).toBe("invalid_token");
}
