// The capacity model's check (docs/capacity.md § Checking the model): the gateway's own code in workerd, its local KV,
// D1, Durable Object and audit queue bindings behind counting proxies, one isolate's slice of the target (TIMES the target with
// SCALE_SIM_TIMES) on a simulated clock, counts scaled back up, and the headroom of each store.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { SignJWT } from "jose";
import { expect, it, vi } from "vitest";
import { createWorker } from "../../src/worker";
import { hashPassword } from "../../src/credentials/password";
import { AUDIT_PREFIX, parseAuditObject } from "../../src/audit/objects";
import { AUDIT_QUEUE_BINDINGS } from "../../src/audit/queues";
import { MAX_NAMED_BYTES, REVOCATION_LAYOUT } from "../../src/revocation/record";
import { createServices } from "../../src/services";
import { auditTrailFigures, auditTrailReport } from "./audit-trail";

/** How many times the target the run stands for: `SCALE_SIM_TIMES` (vitest.scale.config.ts), 1 by default. */
declare const __SCALE_SIM_TIMES__: string;
const TIMES = Number(__SCALE_SIM_TIMES__);
if (!(TIMES >= 1 && TIMES <= 1000)) throw new Error(`SCALE_SIM_TIMES must be a number from 1 to 1000, not ${TIMES}`);
/** Isolates at the target (≈ 50 requests/s each, docs/capacity.md § 1): what runs here is one of them. */
const SCALE = 1000;
/** Isolates at TIMES the target: every isolate keeps its slice, there are more of them. */
const ISOLATES = SCALE * TIMES;
/** Cloudflare locations, at any scale: a key every organisation's traffic reads is written back from each. */
const LOCATIONS = 300;
/** D1 read replicas: one in each of its six regions (docs/capacity.md § Platform limits); reads spread over them. */
const D1_REPLICAS = 6;
/** Revocation events the model assumes at the target (docs/capacity.md), kept ACCESS_TOKEN_TTL + CLOCK_SKEW. */
const REVOCATIONS_PER_SECOND = 5;
const REVOCATION_KEEP_SECONDS = 3630;
const DURABLE_OBJECT_SOFT_LIMIT = 1000;
const ORGANISATIONS = 1_000_000 / SCALE;
const MEMBERS_PER_ORGANISATION = 10;
const PROXIED_PER_SECOND = 50_000 / SCALE;
/** Every DYNAMIC_EVERY-th proxied request carries a dynamic token. */
const DYNAMIC_EVERY = 10;
const LOGINS_PER_SECOND = 200 / SCALE;
const REFRESHES_PER_SECOND = 500 / SCALE;
const FAILED_LOGIN_SHARE = 0.1;
/** 1 % of organisations use dynamic secrets; the n-th of them holds n secrets (1 … 10). */
const DYNAMIC_ORGANISATIONS = ORGANISATIONS / 100;
const SERVICE_MEMBERS = 3;
/**
 * Isolates at the target are assumed to live at least an hour, and to have started at unrelated times. The measured
 * isolate is this old: before its traffic it sees each organisation of its slice once, at the time the steady state
 * puts that organisation's last plan-gate read (see below), as ~1,000 isolates of different ages together do (one
 * isolate alone re-reads its slice in an hourly burst, about its own first sightings an hour later).
 */
const ISOLATE_AGE_SECONDS = 7200;
/** The plan gate re-reads an organisation this long after its last read (src/policy/plan.ts), on its next request. */
const PLAN_ENTRY_MAX_AGE_SECONDS = 3600;
/** A client refreshes when its access token nears expiry: never sooner than this after getting its refresh token. */
const REFRESH_MIN_AGE_MS = 2_000;
/** A brand-new isolate's first seconds of the same traffic, counted on their own (the cold-isolate cost). */
const COLD_SECONDS = 30;
const WARM_UP_SECONDS = 30;
const MEASURED_SECONDS = 120;
/** The simulation stops generating traffic after this much real time, and scales what it covered. */
const WALL_CLOCK_LIMIT_MS = 120_000;
/**
 * Estimated D1 work per statement (docs/capacity.md § 1): an indexed point read, a write, one feed page (an
 * index range of ≤ 500 rows).
 */
const D1_READ_MS = 0.5;
const D1_WRITE_MS = 2;
const D1_FEED_PAGE_MS = 1;
/** The plan gate's background re-read of ≈ 170 states in one query (0.5 ms plus ≈ 0.01 ms a row, an estimate). */
const D1_BATCH_READ_MS = 2;
const FEED_QUERY = "select organisations by updated_at, removed_at";
const BATCH_QUERY = "select organisations by identifier (many)";
const FLOOD_TOKENS = 200;
const FLOOD_SECONDS = 10;
const PASSWORD = "scale-sim-password-0123456789";
const GATEWAY_URL = "https://gateway.test";

type Phase = "proxied" | "login" | "refresh" | "setup";

/** The Durable Object bindings the simulation counts; the shared ones are called by every isolate, the others per entity. */
const OBJECT_BINDINGS = ["REFRESH_FAMILIES", "LOGIN_BACKOFF", "REVOCATIONS", "AUDIT_SINK"] as const;
type ObjectBinding = (typeof OBJECT_BINDINGS)[number];
/** A singleton or a fixed set of shards: each of the target's ~1,000 isolates sends it what this one sends. */
const SHARED_OBJECTS = new Set<ObjectBinding>(["REVOCATIONS", "AUDIT_SINK"]);

interface ObjectStats {
  binding: ObjectBinding;
  name: string;
  requests: number;
  requestsBySecond: Map<number, number>;
}

interface KeyStats {
  prefix: string;
  reads: number;
  writes: number;
  writesBySecond: Map<number, number>;
  largestRead: number;
  largestWrite: number;
  /** Set while a proxied request reads it; its size as read then. */
  largestProxiedRead: number;
  /** Organisations on whose behalf the key was touched (two are enough to call it shared). */
  organisations: Set<string>;
  sample: string | undefined;
}

/** Per-key and per-query counts of the measured window. */
class Counters {
  measuring = false;
  phase: Phase = "setup";
  organisation: string | undefined;
  second = 0;
  readonly keys = new Map<string, KeyStats>();
  readonly queries = new Map<string, number>();
  /** Of {@link queries}, those a session let a read replica answer. */
  readonly replicaQueries = new Map<string, number>();
  /** Durable Object requests (calls on a stub) by binding and object id. */
  readonly objects = new Map<string, ObjectStats>();

  private stats(key: string): KeyStats {
    let stats = this.keys.get(key);
    if (!stats) {
      const prefix = key.includes(":") ? `${key.slice(0, key.indexOf(":"))}:` : key;
      stats = {
        prefix,
        reads: 0,
        writes: 0,
        writesBySecond: new Map(),
        largestRead: 0,
        largestWrite: 0,
        largestProxiedRead: 0,
        organisations: new Set(),
        sample: undefined,
      };
      this.keys.set(key, stats);
    }
    if (this.organisation !== undefined && stats.organisations.size < 2) stats.organisations.add(this.organisation);
    return stats;
  }

  read(key: string, value: unknown): void {
    if (!this.measuring) return;
    const stats = this.stats(key);
    const text = textOf(value);
    const size = bytes(text);
    stats.reads++;
    stats.largestRead = Math.max(stats.largestRead, size);
    if (this.phase === "proxied" && size >= stats.largestProxiedRead) {
      stats.largestProxiedRead = size;
      stats.sample = text;
    }
  }

  write(key: string, value: unknown): void {
    if (!this.measuring) return;
    const stats = this.stats(key);
    stats.writes++;
    stats.writesBySecond.set(this.second, (stats.writesBySecond.get(this.second) ?? 0) + 1);
    stats.largestWrite = Math.max(stats.largestWrite, bytes(textOf(value)));
  }

  query(sql: string, onReplica: boolean): void {
    if (!this.measuring) return;
    const label = queryLabel(sql);
    this.queries.set(label, (this.queries.get(label) ?? 0) + 1);
    if (onReplica) this.replicaQueries.set(label, (this.replicaQueries.get(label) ?? 0) + 1);
  }

  /** Every Durable Object request of the run, measured or not, by binding. */
  readonly allObjectRequests = new Map<ObjectBinding, number>();

  objectRequest(binding: ObjectBinding, name: string): void {
    this.allObjectRequests.set(binding, (this.allObjectRequests.get(binding) ?? 0) + 1);
    if (!this.measuring) return;
    const key = `${binding}/${name}`;
    let stats = this.objects.get(key);
    if (!stats) this.objects.set(key, (stats = { binding, name, requests: 0, requestsBySecond: new Map() }));
    stats.requests++;
    stats.requestsBySecond.set(this.second, (stats.requestsBySecond.get(this.second) ?? 0) + 1);
  }

  /** Audit events sent to each queue in the measured window, their bytes, and every event of the run. */
  readonly queueMessages = new Map<string, number>();
  queueBytes = 0;
  allQueueMessages = 0;

  queueMessage(binding: string, body: unknown): void {
    this.allQueueMessages++;
    if (!this.measuring) return;
    this.queueMessages.set(binding, (this.queueMessages.get(binding) ?? 0) + 1);
    this.queueBytes += bytes(JSON.stringify(body));
  }

  reset(): void {
    this.keys.clear();
    this.queries.clear();
    this.replicaQueries.clear();
    this.objects.clear();
    this.queueMessages.clear();
    this.queueBytes = 0;
  }
}

function textOf(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  if (value instanceof ArrayBuffer) return new TextDecoder().decode(value);
  return JSON.stringify(value);
}

function bytes(text: string): number {
  return new TextEncoder().encode(text).byteLength;
}

/** `select organisations by identifier`: the verb, the first table and the columns of the WHERE clause. */
function queryLabel(sql: string): string {
  const text = sql.replace(/\s+/g, " ").trim().toLowerCase();
  if (text.includes("json_each") && text.includes('from "organisations"')) return BATCH_QUERY;
  if (text.includes('from "dynamic_secrets" join')) return "select dynamic_secrets, members by organisation";
  const verb = text.split(" ", 1)[0];
  const table = /(?:from|into|update) "([a-z_]+)"/.exec(text)?.[1] ?? "?";
  const where = text.includes(" where ") ? text.slice(text.indexOf(" where ")) : "";
  const columns = [...new Set([...where.matchAll(/"[a-z_]+"\."([a-z_]+)"/g)].map((match) => match[1]))];
  return `${verb} ${table}${columns.length ? ` by ${columns.join(", ")}` : ""}`;
}

/** Estimated D1 work of one statement with that label, in ms. */
function queryMs(label: string): number {
  if (label === FEED_QUERY) return D1_FEED_PAGE_MS;
  if (label === BATCH_QUERY) return D1_BATCH_READ_MS;
  return label.startsWith("select ") ? D1_READ_MS : D1_WRITE_MS;
}

/**
 * How many times a statement of this label runs at the target for each time it ran here: the plan gate's feed polls
 * once per location (its isolates share the window they read), everything else once per isolate.
 */
function queryScale(label: string): number {
  return label === FEED_QUERY ? LOCATIONS : ISOLATES;
}

/** Size a shared value would have at the run's scale: its fixed part, plus its arrays' contents times ISOLATES. */
function scaledSize(text: string): number {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return bytes(text) * ISOLATES;
  }
  const emptied = JSON.stringify(parsed, (_key, value: unknown) => (Array.isArray(value) ? [] : value));
  const fixed = bytes(emptied);
  return fixed + (bytes(text) - fixed) * ISOLATES;
}

function countingKv(kv: KVNamespace, counters: Counters): KVNamespace {
  return new Proxy(kv, {
    get(target, property) {
      if (property === "get")
        return async (key: string | string[], options?: unknown) => {
          if (Array.isArray(key)) {
            // A bulk read (the revocation shards): counted per key.
            const values = await target.get(key, options as "text");
            for (const [name, value] of values) counters.read(name, value);
            return values;
          }
          const value: unknown = await target.get(key, options as "text");
          counters.read(key, value);
          return value;
        };
      if (property === "put")
        return async (key: string, value: string, options?: KVNamespacePutOptions) => {
          counters.write(key, value);
          return target.put(key, value, options);
        };
      if (property === "delete")
        return async (key: string) => {
          counters.write(key, null);
          return target.delete(key);
        };
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * D1 counting each statement, and whether it may run on a read replica: the binding's own statements and a
 * `first-primary` session's run on the primary; a `first-unconstrained` session's and one from a bookmark on a replica.
 */
function countingD1(db: D1Database, counters: Counters): D1Database {
  const counted = <T extends object>(target: T, onReplica: boolean): T =>
    new Proxy(target, {
      get(inner, property) {
        if (property === "prepare")
          return (sql: string) => {
            counters.query(sql, onReplica);
            return (inner as unknown as D1Database).prepare(sql);
          };
        if (property === "withSession")
          return (constraint: string) =>
            counted((inner as unknown as D1Database).withSession(constraint), constraint !== "first-primary");
        const value: unknown = Reflect.get(inner, property);
        return typeof value === "function" ? value.bind(inner) : value;
      },
    });
  return counted(db, false);
}

/** A stub whose every call (an RPC method or `fetch`) counts as one request to its object. */
function countingStub<T extends object>(stub: T, binding: ObjectBinding, name: string, counters: Counters): T {
  return new Proxy(stub, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property);
      if (typeof value !== "function" || typeof property !== "string") return value;
      return (...args: unknown[]) => {
        counters.objectRequest(binding, name);
        // Reflect.apply: an RPC method's own `apply` property would be taken for a remote method.
        return Reflect.apply(value, target, args);
      };
    },
  });
}

function countingObjects(namespace: DurableObjectNamespace, binding: ObjectBinding, counters: Counters) {
  const nameOf = (id: DurableObjectId) => id.name ?? id.toString();
  return new Proxy(namespace, {
    get(target, property) {
      if (property === "get")
        return (id: DurableObjectId, options?: DurableObjectNamespaceGetDurableObjectOptions) =>
          countingStub<object>(target.get(id, options), binding, nameOf(id), counters);
      if (property === "getByName")
        return (name: string, options?: DurableObjectNamespaceGetDurableObjectOptions) =>
          countingStub<object>(target.getByName(name, options), binding, name, counters);
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** An audit queue counting the events sent to it. */
function countingQueue(queue: Queue, binding: string, counters: Counters): Queue {
  return new Proxy(queue, {
    get(target, property) {
      if (property === "send")
        return (body: unknown, options?: QueueSendOptions) => {
          counters.queueMessage(binding, body);
          return target.send(body, options);
        };
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Distinct audit events stored in R2 (a redelivered one counts once). */
async function auditEventsInR2(): Promise<number> {
  const ids = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await env.AUDIT_BUCKET.list({ prefix: AUDIT_PREFIX, cursor });
    for (const object of page.objects)
      for (const row of parseAuditObject(await (await env.AUDIT_BUCKET.get(object.key))!.text())) ids.add(row.id);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return ids.size;
}

/** A small deterministic PRNG (mulberry32), so every run sends the same traffic. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface SimOrganisation {
  identifier: string;
  members: { id: number; identifier: string; email: string }[];
  secrets: { kid: string; secret: string }[];
}

const fmt = (value: number, digits = 1) => value.toLocaleString("en-GB", { maximumFractionDigits: digits });

it("drives 1/SCALE of the target through the gateway and scales its storage use back up", async () => {
  const wallStart = Date.now();
  const auditEventsBefore = await auditEventsInR2();
  const counters = new Counters();
  const clock = { now: Date.now() };
  const simEnv = {
    ...env,
    TOKENS: countingKv(env.TOKENS, counters),
    DB: countingD1(env.DB, counters),
    ...Object.fromEntries(
      OBJECT_BINDINGS.map((binding) => [
        binding,
        countingObjects(env[binding] as unknown as DurableObjectNamespace, binding, counters),
      ]),
    ),
    ...Object.fromEntries(AUDIT_QUEUE_BINDINGS.map((name) => [name, countingQueue(env[name], name, counters)])),
  } as typeof env;
  let gateway = createServices(simEnv, { now: () => clock.now });
  const app = createWorker({ servicesFor: () => gateway });
  vi.spyOn(globalThis, "fetch").mockImplementation(async () => Response.json({ ok: true }));
  const rand = random(19);

  const send = async (
    phase: Phase,
    organisation: string | undefined,
    request: Request,
  ): Promise<{ status: number; body: string }> => {
    counters.phase = phase;
    counters.organisation = organisation;
    const ctx = createExecutionContext();
    const response = await app.fetch(request, simEnv, ctx);
    const body = await response.text();
    await waitOnExecutionContext(ctx);
    counters.phase = "setup";
    counters.organisation = undefined;
    return { status: response.status, body };
  };

  // The population, written straight to D1 (not counted).
  const passwordHash = await hashPassword(PASSWORD, env.PASSWORD_PEPPER!);
  const organisations: SimOrganisation[] = [];
  const statements: D1PreparedStatement[] = [];
  for (let o = 0; o < ORGANISATIONS; o++) {
    const id = 100_000 + o;
    const identifier = `so${o}`;
    const org: SimOrganisation = { identifier, members: [], secrets: [] };
    statements.push(
      env.DB.prepare(
        "INSERT INTO organisations (id, identifier, name, domain, plan) VALUES (?, ?, ?, ?, 'enterprise')",
      ).bind(id, identifier, `Sim ${o}`, `${identifier}.example`),
    );
    for (let m = 0; m < MEMBERS_PER_ORGANISATION; m++) {
      const member = {
        id: 1_000_000 + o * MEMBERS_PER_ORGANISATION + m,
        identifier: `su${o}x${m}`,
        email: `su${m}@${identifier}.example`,
      };
      org.members.push(member);
      statements.push(
        env.DB.prepare(
          "INSERT INTO members (id, identifier, organisation_id, email, password_hash, role) VALUES (?, ?, ?, ?, ?, ?)",
        ).bind(member.id, member.identifier, id, member.email, passwordHash, m === 0 ? "architect" : "builder"),
      );
    }
    organisations.push(org);
  }
  for (let i = 0; i < statements.length; i += 500) await env.DB.batch(statements.slice(i, i + 500));

  const sign = (claims: Record<string, unknown>, secret: string, kid?: string) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: "HS256", typ: "JWT", ...(kid ? { kid } : {}) })
      .sign(new TextEncoder().encode(secret));
  const seconds = () => Math.floor(clock.now / 1000);
  const fixedToken = (org: SimOrganisation, member: SimOrganisation["members"][number], scope = "builder") =>
    sign(
      {
        iat: seconds(),
        iss: "gridgate",
        jti: crypto.randomUUID(),
        exp: seconds() + 3600,
        memberEntityId: member.id,
        memberEntityIdentifier: member.identifier,
        organisationEntityIdentifier: org.identifier,
        scope,
        secretType: "fixed",
      },
      env.JWT_SECRET!,
    );

  // Dynamic secrets, created through the API by each organisation's architect (not counted).
  const dynamic = organisations.filter((_, o) => o % (ORGANISATIONS / DYNAMIC_ORGANISATIONS) === 7);
  for (const [n, org] of dynamic.entries()) {
    const architect = await fixedToken(org, org.members[0]!, "architect");
    for (let s = 0; s <= n; s++) {
      const response = await send(
        "setup",
        org.identifier,
        new Request(`${GATEWAY_URL}/authenticate/secrets`, {
          method: "POST",
          headers: { Authorization: `Bearer ${architect}` },
        }),
      );
      expect(response.status).toBe(201);
      org.secrets.push(JSON.parse(response.body) as { kid: string; secret: string });
    }
  }

  // The revocation record in its steady state at the run's scale (the model's rate, kept ACCESS_TOKEN_TTL +
  // CLOCK_SKEW), written straight to its objects (not counted), instants spread over the hour kept.
  const liveRevocations = Math.round(REVOCATIONS_PER_SECOND * TIMES * REVOCATION_KEEP_SECONDS);
  const recorder = createServices(env);
  const revocationBatches = 6;
  for (let batch = 0; batch < revocationBatches; batch++) {
    const members = Array.from(
      { length: Math.ceil(liveRevocations / revocationBatches) },
      (_, i) => 100_000_000 + i * revocationBatches + batch,
    );
    const at = Date.now() - ((revocationBatches - 1 - batch) * REVOCATION_KEEP_SECONDS * 1000) / revocationBatches;
    await recorder.revocations.revoke({ accessTokenTtl: 3600, clockSkew: 30 }, { members }, at);
  }
  const shardKeys = Array.from({ length: REVOCATION_LAYOUT.shards }, (_, shard) => REVOCATION_LAYOUT.key(shard));
  let shardSizes: number[] = [];
  /** Bytes of named entries (what {@link MAX_NAMED_BYTES} bounds) in each shard's record. */
  let shardNamed: number[] = [];
  for (let waited = 0; waited < 30_000; waited += 500) {
    const records = await Promise.all(shardKeys.map((key) => env.TOKENS.get(key)));
    const named = records.reduce((sum, text) => sum + Object.keys(text ? JSON.parse(text).members : {}).length, 0);
    shardSizes = records.map((text) => bytes(text ?? ""));
    shardNamed = records.map((text) => {
      const record = JSON.parse(text ?? "{}") as { members?: object; organisations?: object };
      return bytes(JSON.stringify(record.members ?? {})) + bytes(JSON.stringify(record.organisations ?? {}));
    });
    if (named >= revocationBatches * Math.ceil(liveRevocations / revocationBatches)) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const largestShard = Math.max(...shardSizes);
  const largestNamed = Math.max(...shardNamed);
  const trafficStart = Date.now();

  // The simulated clock starts after the population's rows were written (their password_changed_at).
  clock.now = Date.now() + 1000;

  // Traffic: Zipf (s = 1) over organisations for member sessions, uniform over the dynamic ones.
  const weights = organisations.map((_, rank) => 1 / (rank + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  let cumulative = 0;
  const cdf = weights.map((weight) => (cumulative += weight / total));
  const pickOrganisation = () => {
    const x = rand();
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return organisations[lo]!;
  };
  const fixedTokens = new Map<number, Promise<string>>();
  const dynamicTokens = new Map<string, Promise<string>>();
  /** Sessions' current refresh tokens and the simulated time each was issued. */
  const refreshTokens: { token: string; issuedAt: number }[] = [];
  const outcomes = new Map<string, number>();
  const count = (what: string) => outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
  const randomIp = () => `10.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}`;

  const proxied = async (n: number) => {
    let org: SimOrganisation;
    let token: string;
    if (n % DYNAMIC_EVERY === 0) {
      org = dynamic[Math.floor(rand() * dynamic.length)]!;
      const member = org.members[1 + Math.floor(rand() * SERVICE_MEMBERS)]!;
      const withKid = rand() < 0.9;
      const secret = org.secrets[Math.floor(rand() * org.secrets.length)]!;
      const cacheKey = `${member.identifier}/${withKid ? secret.kid : "-"}`;
      let pending = dynamicTokens.get(cacheKey);
      if (!pending) {
        const claims = {
          iat: seconds(),
          memberEntityIdentifier: member.identifier,
          organisationEntityIdentifier: org.identifier,
          scope: "organisation",
          secretType: "dynamic",
        };
        pending = sign(claims, secret.secret, withKid ? secret.kid : undefined);
        dynamicTokens.set(cacheKey, pending);
      }
      token = await pending;
    } else {
      org = pickOrganisation();
      const member = org.members[Math.floor(rand() * MEMBERS_PER_ORGANISATION)]!;
      let pending = fixedTokens.get(member.id);
      if (!pending) fixedTokens.set(member.id, (pending = fixedToken(org, member)));
      token = await pending;
    }
    const response = await send(
      "proxied",
      org.identifier,
      new Request(`${GATEWAY_URL}/grids`, { headers: { Authorization: `Bearer ${token}` } }),
    );
    count(`proxied ${response.status}`);
  };
  const login = async () => {
    const org = organisations[Math.floor(rand() * organisations.length)]!;
    const member = org.members[Math.floor(rand() * MEMBERS_PER_ORGANISATION)]!;
    const password = rand() < FAILED_LOGIN_SHARE ? `${PASSWORD}-wrong` : PASSWORD;
    const response = await send(
      "login",
      org.identifier,
      new Request(`${GATEWAY_URL}/authenticate`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "CF-Connecting-IP": randomIp() },
        body: JSON.stringify({ email: member.email, password }),
      }),
    );
    count(`login ${response.status}`);
    if (response.status === 200) issued(response.body);
  };
  const issued = (body: string) =>
    refreshTokens.push({ token: (JSON.parse(body) as { refresh_token: string }).refresh_token, issuedAt: clock.now });
  // A client refreshes when its access token nears expiry, so never within REFRESH_MIN_AGE_MS of getting its token.
  const refresh = async () => {
    const due = refreshTokens.filter(({ issuedAt }) => clock.now - issuedAt >= REFRESH_MIN_AGE_MS);
    const picked = due[Math.floor(rand() * due.length)];
    if (picked === undefined) return count("refresh skipped (no session)");
    refreshTokens.splice(refreshTokens.indexOf(picked), 1);
    const { token } = picked;
    const response = await send(
      "refresh",
      undefined,
      new Request(`${GATEWAY_URL}/authenticate/refresh`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: token }),
      }),
    );
    count(`refresh ${response.status}`);
    if (response.status === 200) issued(response.body);
  };

  const tick = 1000 / PROXIED_PER_SECOND;
  let loginsDue = 0;
  let refreshesDue = 0;
  /** § 1's traffic for `seconds` simulated seconds from the clock's time; `each` runs before every proxied request. */
  const drive = async (seconds: number, each: (elapsed: number) => boolean | void) => {
    const start = clock.now;
    for (let n = 0; n < seconds * PROXIED_PER_SECOND; n++) {
      clock.now = start + n * tick;
      if (each((clock.now - start) / 1000) === false) return false;
      await proxied(n);
      loginsDue += LOGINS_PER_SECOND * (tick / 1000);
      refreshesDue += REFRESHES_PER_SECOND * (tick / 1000);
      for (; loginsDue >= 1; loginsDue--) await login();
      for (; refreshesDue >= 1; refreshesDue--) await refresh();
    }
    clock.now = start + seconds * 1000;
    return true;
  };

  // A cold isolate: sessions to refresh from its first second on (not counted), then COLD_SECONDS of traffic, counted
  // on their own.
  for (let i = 0; i < 20; i++) await login();
  counters.measuring = true;
  await drive(COLD_SECONDS, (elapsed) => void (counters.second = Math.floor(elapsed)));
  counters.measuring = false;
  const coldLocation = { queries: new Map(counters.queries), replica: new Map(counters.replicaQueries) };
  counters.reset();

  // The measured isolate, ISOLATE_AGE_SECONDS old: each organisation of its slice seen once, at the time of its
  // last plan-gate read in the steady state of its own traffic (r requests/s): with probability
  // PLAN_ENTRY_MAX_AGE / (PLAN_ENTRY_MAX_AGE + 1/r) that read is younger than the hour (its age uniform over it), otherwise the
  // entry expired and waits for the organisation's next request (age: the hour plus an exponential wait of mean 1/r).
  // Then warm-up, then the measured window.
  gateway = createServices(simEnv, { now: () => clock.now });
  const ageEnd = clock.now + ISOLATE_AGE_SECONDS * 1000;
  const dynamicRate = PROXIED_PER_SECOND / DYNAMIC_EVERY / dynamic.length;
  const lastReads = organisations
    .map((org, rank) => {
      const rate =
        PROXIED_PER_SECOND * (1 - 1 / DYNAMIC_EVERY) * (weights[rank]! / total) +
        (dynamic.includes(org) ? dynamicRate : 0);
      const pending = rand() < 1 / rate / (PLAN_ENTRY_MAX_AGE_SECONDS + 1 / rate);
      const age = pending
        ? PLAN_ENTRY_MAX_AGE_SECONDS - Math.log(1 - rand()) / rate
        : rand() * PLAN_ENTRY_MAX_AGE_SECONDS;
      return { org, at: ageEnd - Math.min(age, ISOLATE_AGE_SECONDS) * 1000 };
    })
    .sort((a, b) => a.at - b.at);
  for (const { org, at } of lastReads) {
    clock.now = at;
    const member = org.members[Math.floor(rand() * MEMBERS_PER_ORGANISATION)]!;
    const response = await send(
      "proxied",
      org.identifier,
      new Request(`${GATEWAY_URL}/grids`, { headers: { Authorization: `Bearer ${await fixedToken(org, member)}` } }),
    );
    count(`ageing ${response.status}`);
  }
  clock.now = ageEnd;
  const expiredAtStart = lastReads.filter(({ at }) => ageEnd - at >= PLAN_ENTRY_MAX_AGE_SECONDS * 1000).length;
  expect(outcomes.get("ageing 200")).toBe(ORGANISATIONS);
  fixedTokens.clear();
  dynamicTokens.clear();
  let measuredSeconds = 0;
  let stoppedEarly = false;
  await drive(WARM_UP_SECONDS, () => {});
  outcomes.clear();
  counters.measuring = true;
  await drive(MEASURED_SECONDS, (elapsed) => {
    if (Date.now() - trafficStart > WALL_CLOCK_LIMIT_MS && elapsed >= 60) {
      stoppedEarly = true;
      return false;
    }
    counters.second = Math.floor(elapsed);
    measuredSeconds = elapsed + tick / 1000;
  });
  counters.measuring = false;

  const steady = { queries: new Map(counters.queries), replica: new Map(counters.replicaQueries) };
  const measuredOutcomes = new Map(outcomes);
  const steadyObjects = [...counters.objects.values()];
  const steadyKeys = new Map(counters.keys);
  // The audit events of the measured window: every isolate at the run's scale sends the same to the same queues.
  const auditInWindow = [...counters.queueMessages.values()].reduce((a, b) => a + b, 0);
  const audit = {
    perQueue: AUDIT_QUEUE_BINDINGS.map(
      (name) => ((counters.queueMessages.get(name) ?? 0) / measuredSeconds) * ISOLATES,
    ),
    eventBytes: counters.queueBytes / Math.max(1, auditInWindow),
    times: TIMES,
  };
  const trail = auditTrailFigures(audit);

  // A flood of tokens naming random organisations at this isolate (counted on its own).
  counters.reset();
  counters.measuring = true;
  const floodStart = clock.now;
  const floodSecret = dynamic[0]!.secrets[0]!.secret;
  const refused = new Map<number, number>();
  for (let i = 0; i < FLOOD_TOKENS; i++) {
    clock.now = floodStart + (i * FLOOD_SECONDS * 1000) / FLOOD_TOKENS;
    const token = await sign(
      {
        iat: seconds(),
        memberEntityIdentifier: "su0x1",
        organisationEntityIdentifier: `rnd${Math.floor(rand() * 1e12).toString(36)}`,
        scope: "organisation",
        secretType: "dynamic",
      },
      floodSecret,
    );
    const response = await send(
      "proxied",
      undefined,
      new Request(`${GATEWAY_URL}/grids`, { headers: { Authorization: `Bearer ${token}` } }),
    );
    refused.set(response.status, (refused.get(response.status) ?? 0) + 1);
  }
  counters.measuring = false;
  const floodQueries = [...counters.queries.values()].reduce((a, b) => a + b, 0);
  const floodReads = [...counters.keys.values()].reduce((sum, s) => sum + s.reads, 0);

  // An all-at-once deployment: a new isolate at this location (its copy warm from the isolate before) takes
  // COLD_SECONDS of the traffic, counted on their own; at the target every isolate does the same at once.
  counters.reset();
  gateway = createServices(simEnv, { now: () => clock.now });
  counters.measuring = true;
  await drive(COLD_SECONDS, (elapsed) => void (counters.second = Math.floor(elapsed)));
  counters.measuring = false;
  const deployment = { queries: new Map(counters.queries), replica: new Map(counters.replicaQueries) };

  // The report, at the run's scale.
  const lines: string[] = [];
  const say = (line = "") => lines.push(line);
  const target = TIMES === 1 ? "the target" : `${TIMES}× the target`;
  say(
    `${target}: ${fmt(ISOLATES)} isolates over ${LOCATIONS} locations; this one's slice: ${ORGANISATIONS} organisations, ` +
      `${ORGANISATIONS * MEMBERS_PER_ORGANISATION} members, ${dynamic.length} with ` +
      `${dynamic.reduce((sum, org) => sum + org.secrets.length, 0)} dynamic secrets; ${fmt(measuredSeconds)} simulated s measured` +
      `${stoppedEarly ? " (stopped early by the wall-clock limit)" : ""}, real ${fmt((Date.now() - wallStart) / 1000)} s`,
  );
  say(
    `the measured isolate is ${fmt(ISOLATE_AGE_SECONDS / 3600)} h old: each of its ${ORGANISATIONS} organisations seen ` +
      `at its steady-state last plan-gate read (${expiredAtStart} more than an hour before); then ${WARM_UP_SECONDS} s of warm-up`,
  );
  say(`requests measured: ${[...measuredOutcomes].map(([what, n]) => `${what} ×${n}`).join(", ")}`);
  say();
  say(`KV by key prefix (per-key figures unscaled unless the key is shared by organisations):`);
  const prefixes = new Map<string, KeyStats[]>();
  for (const stats of steadyKeys.values()) prefixes.set(stats.prefix, [...(prefixes.get(stats.prefix) ?? []), stats]);
  let maxWritesPerKey = 0;
  let largestProxiedRead = 0;
  let largestProxiedKey = "none";
  for (const [key, stats] of steadyKeys) {
    const shared = stats.organisations.size > 1;
    const peak = Math.max(0, ...stats.writesBySecond.values());
    const perKey = shared ? Math.max(peak, (stats.writes / measuredSeconds) * LOCATIONS) : peak;
    maxWritesPerKey = Math.max(maxWritesPerKey, perKey);
    if (stats.largestProxiedRead > 0) {
      // Revocation shards hold the record at the run's scale already; other shared values list one slice.
      const prefilled = key.startsWith(REVOCATION_LAYOUT.key(0).replace(/0$/, ""));
      const size =
        shared && !prefilled && stats.sample !== undefined ? scaledSize(stats.sample) : stats.largestProxiedRead;
      if (size > largestProxiedRead) [largestProxiedRead, largestProxiedKey] = [size, key];
    }
  }
  for (const [prefix, all] of [...prefixes].sort()) {
    const reads = all.reduce((sum, s) => sum + s.reads, 0);
    const writes = all.reduce((sum, s) => sum + s.writes, 0);
    const shared = all.some((s) => s.organisations.size > 1);
    const peak = Math.max(0, ...all.flatMap((s) => [...s.writesBySecond.values()]));
    const largest = Math.max(...all.map((s) => Math.max(s.largestRead, s.largestWrite)));
    const onPath = all.some((s) => s.largestProxiedRead > 0);
    say(
      `  ${prefix.padEnd(20)} keys ${String(all.length).padStart(6)}  reads/s ${fmt((reads / measuredSeconds) * ISOLATES, 0).padStart(8)}` +
        `  writes/s ${fmt((writes / measuredSeconds) * ISOLATES, 0).padStart(7)}  max writes to one key in 1 s ${peak}` +
        `  largest value ${fmt(largest / 1024, 2)} KiB${onPath ? " (proxied path)" : ""}${shared ? "  SHARED" : ""}`,
    );
  }
  say(
    `  revocation record: ${fmt(liveRevocations)} live entries over ${REVOCATION_LAYOUT.shards} shards, the largest ` +
      `${fmt(largestShard / 1024, 1)} KiB, ${fmt(largestNamed / 1024, 1)} KiB of it named entries (merged into fail-closed ` +
      `buckets past ${MAX_NAMED_BYTES / 1024} KiB); ` +
      `each shard written ≤ 1/s by construction`,
  );
  say();
  say(
    `Durable Objects (requests/s; per-entity objects: their busiest second, unscaled; shared ones: × ${fmt(ISOLATES)} isolates):`,
  );
  const objectRate = (stats: ObjectStats) =>
    SHARED_OBJECTS.has(stats.binding)
      ? (stats.requests / measuredSeconds) * ISOLATES
      : Math.max(0, ...stats.requestsBySecond.values());
  let busiestObject = 0;
  let busiestObjectName = "none";
  let busiestShared = 0;
  for (const binding of OBJECT_BINDINGS) {
    const all = steadyObjects.filter((stats) => stats.binding === binding);
    const requests = all.reduce((sum, stats) => sum + stats.requests, 0);
    const busiest = all.reduce<ObjectStats | undefined>(
      (top, stats) => (top === undefined || objectRate(stats) > objectRate(top) ? stats : top),
      undefined,
    );
    if (busiest && objectRate(busiest) > busiestObject)
      [busiestObject, busiestObjectName] = [objectRate(busiest), `${binding} ${busiest.name}`];
    if (busiest && SHARED_OBJECTS.has(binding) && binding !== "AUDIT_SINK")
      busiestShared = Math.max(busiestShared, objectRate(busiest));
    say(
      `  ${binding.padEnd(16)} objects ${String(all.length).padStart(6)}  requests/s ${fmt((requests / measuredSeconds) * ISOLATES, 0).padStart(7)}` +
        `  busiest ${busiest ? `${fmt(objectRate(busiest))} /s (${SHARED_OBJECTS.has(binding) ? busiest.name : "one entity"})` : "— (not called)"}` +
        `${SHARED_OBJECTS.has(binding) ? "  SHARED by every isolate" : ""}`,
    );
  }

  /** D1 work per second at the run's scale, on the primary and on the replicas, of what ran here in `seconds`. */
  const d1Load = ({ queries, replica }: typeof steady, seconds: number) => {
    let primary = 0;
    let replicas = 0;
    let rate = 0;
    for (const [label, n] of queries) {
      const scale = queryScale(label) / seconds;
      const onReplica = (replica.get(label) ?? 0) * scale;
      rate += n * scale;
      primary += ((n * scale - onReplica) * queryMs(label)) / 1000;
      replicas += (onReplica * queryMs(label)) / 1000;
    }
    return { primary, replicas, rate, perReplica: replicas / D1_REPLICAS };
  };
  say();
  say(
    `D1 statements (busy: seconds of work per second at ${D1_READ_MS} ms a read, ${D1_WRITE_MS} ms a write, ` +
      `${D1_FEED_PAGE_MS} ms a feed page, ${D1_BATCH_READ_MS} ms a re-read of many; ` +
      `replica reads spread over ${D1_REPLICAS} replicas; feed polls × ${LOCATIONS} locations, the rest × ${fmt(ISOLATES)} isolates):`,
  );
  for (const [label, n] of [...steady.queries].sort((a, b) => b[1] - a[1])) {
    const rate = (n / measuredSeconds) * queryScale(label);
    const share = (steady.replica.get(label) ?? 0) / n;
    say(
      `  ${label.padEnd(58)} ${fmt(rate, 0).padStart(8)} /s  ${share === 1 ? "replica" : share === 0 ? "primary" : `${fmt(share * 100, 0)} % replica`}` +
        `  busy ${fmt((rate * queryMs(label)) / 1000, 3).padStart(6)} s/s`,
    );
  }
  // What the traffic here does not show, from the model: revocations (a read of the subjects' latest instants and a
  // write each, on the primary) and the plan gate's background re-reads (each state once an hour, ≈ 170 a query).
  const revocationWrites = REVOCATIONS_PER_SECOND * TIMES;
  const reReads = (ORGANISATIONS * ISOLATES) / 3600 / 170;
  const modelled = (revocationWrites * (D1_READ_MS + D1_WRITE_MS) + reReads * D1_BATCH_READ_MS) / 1000;
  say(
    `  ${"(model) revocations, a read and a write each".padEnd(58)} ${fmt(revocationWrites, 0).padStart(8)} /s  primary` +
      `  busy ${fmt((revocationWrites * (D1_READ_MS + D1_WRITE_MS)) / 1000, 3).padStart(6)} s/s`,
  );
  say(
    `  ${"(model) plan gate re-reads, ≈ 170 states each".padEnd(58)} ${fmt(reReads, 1).padStart(8)} /s  primary` +
      `  busy ${fmt((reReads * D1_BATCH_READ_MS) / 1000, 3).padStart(6)} s/s`,
  );
  // The re-reads the window happened to catch are in the model's figure already.
  const withoutReReads = new Map([...steady.queries].filter(([label]) => label !== BATCH_QUERY));
  const measured = d1Load({ queries: withoutReReads, replica: steady.replica }, measuredSeconds);
  const load = {
    ...measured,
    primary: measured.primary + modelled,
    rate: measured.rate + revocationWrites * 2 + reReads,
  };
  say(
    `  steady state: ${fmt(load.rate, 0)} statements/s; primary ${fmt(load.primary, 3)} s/s, replicas ${fmt(load.replicas, 3)} s/s ` +
      `(${fmt(load.perReplica, 3)} each)`,
  );
  const cold = d1Load(coldLocation, COLD_SECONDS);
  say(
    `  a cold location (an empty copy: the first deployment, or the cache evicted): primary ${fmt(cold.primary, 2)} s/s, ` +
      `replicas ${fmt(cold.perReplica, 3)} s/s each, were every location cold at once`,
  );
  const deployed = d1Load(deployment, COLD_SECONDS);
  const deploy = { ...deployed, primary: deployed.primary + modelled };
  say(
    `  all-at-once deployment (every isolate new, locations warm), first ${COLD_SECONDS} s: ${fmt(deploy.rate, 0)} statements/s; ` +
      `primary ${fmt(deploy.primary, 3)} s/s, replicas ${fmt(deploy.perReplica, 3)} s/s each; ` +
      `the new isolate here: ${[...deployment.queries.values()].reduce((a, b) => a + b, 0)} statements, ` +
      `${deployment.queries.get("select organisations by identifier") ?? 0} of them plan-gate reads of one organisation`,
  );
  say();
  say(
    `flood at one isolate: ${FLOOD_TOKENS} dynamic tokens naming random organisations in ${FLOOD_SECONDS} s → ` +
      `${[...refused].map(([status, n]) => `${status} ×${n}`).join(", ")}; ${floodQueries} D1 queries, ${floodReads} KV reads`,
  );
  say(`largest KV value read on the proxied path: ${largestProxiedKey.replace(/:[^:]*$/, ":…")}`);
  say(`busiest Durable Object: ${busiestObjectName}`);
  say();
  for (const line of auditTrailReport(audit)) say(line);

  // Headroom: how many times the target each store takes before its first limit (linear in the load measured here).
  const headroomOf = (stores: [string, number][]) =>
    stores.reduce((first, store) => (store[1] < first[1] ? store : first));
  const steadyStores: [string, number][] = [
    ["D1 primary", TIMES / load.primary],
    ["D1 replicas", TIMES / load.perReplica],
    ["Durable Objects", (TIMES * DURABLE_OBJECT_SOFT_LIMIT) / Math.max(busiestShared, 1e-9)],
    ["revocation shards", (TIMES * MAX_NAMED_BYTES) / largestNamed],
    ["audit queues", trail.headroom],
  ];
  const deployStores: [string, number][] = [
    ["D1 primary", TIMES / deploy.primary],
    ["D1 replicas", TIMES / deploy.perReplica],
    ["audit queues", trail.headroom],
  ];
  say(`headroom by store (× the target): ${steadyStores.map(([name, n]) => `${name} ${fmt(n, 1)}`).join(", ")}`);
  say(`all-at-once deployment (× the target): ${deployStores.map(([name, n]) => `${name} ${fmt(n, 1)}`).join(", ")}`);

  // Every audit event handed to a queue reaches R2 (the local consumer writes on the wall clock, at once).
  const auditSent = counters.allQueueMessages;
  const auditDeadline = Date.now() + 10_000;
  let auditWritten = (await auditEventsInR2()) - auditEventsBefore;
  while (auditWritten < auditSent && Date.now() < auditDeadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    auditWritten = (await auditEventsInR2()) - auditEventsBefore;
  }
  say(`audit queues: ${auditSent} events sent in the whole run, ${auditWritten} distinct events in R2`);

  for (const line of lines) console.log(`scale-sim ${line}`);
  const [steadyFirst, steadyHeadroom] = headroomOf(steadyStores);
  const [deployFirst, deployHeadroom] = headroomOf(deployStores);
  console.log(
    `scale-sim: at ${target}, max writes/s per KV key ${fmt(maxWritesPerKey)}, largest KV value read on the proxied path ` +
      `${fmt(largestProxiedRead / 1024)} KiB, D1 statements/s ${fmt(load.rate, 0).replaceAll(",", "")} ` +
      `(primary ${fmt(load.primary, 2)} s/s, each replica ${fmt(load.perReplica, 2)} s/s), ` +
      `busiest Durable Object ${fmt(busiestObject, 0).replaceAll(",", "")} req/s, ` +
      `audit queues ${fmt(trail.busiest, 0).replaceAll(",", "")} msg/s each; ` +
      `headroom: ${fmt(Math.floor(steadyHeadroom * 10) / 10)}× (first to fill: ${steadyFirst}), ` +
      `cold deploy: ${fmt(Math.floor(deployHeadroom * 10) / 10)}× (first to fill: ${deployFirst})`,
  );
  expect(measuredOutcomes.get("proxied 200")).toBeGreaterThan(0);
  expect(outcomes.get("proxied 503") ?? 0, "no 503 while the new isolate starts").toBe(0);
  expect(auditWritten).toBe(auditSent);
});
