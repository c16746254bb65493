// The capacity model's check (docs/capacity.md § 9): the gateway's own code in workerd, its local KV, D1 and Durable
// Object bindings behind counting proxies, a population and traffic 1/SCALE of the target on a simulated clock, counts
// scaled back up.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { SignJWT } from "jose";
import { expect, it, vi } from "vitest";
import { createWorker } from "../../src/worker";
import { hashPassword } from "../../src/credentials/password";
import { parseAuditObject, AUDIT_PREFIX } from "../../src/audit/objects";
import { AUDIT_QUEUE_BINDINGS } from "../../src/audit/queues";
import { createServices } from "../../src/services";
import { auditTrailFigures, auditTrailReport } from "./audit-trail";

/** The target (docs/capacity.md § 1) is SCALE times what runs here: one isolate's slice of it. */
const SCALE = 1000;
/** Cloudflare locations at the target: a key every organisation's traffic reads is written back from each. */
const LOCATIONS = 300;
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
 * Estimated D1 work per statement (docs/capacity.md § 1, § 5): an indexed point read, a write, one feed page (an
 * index range of ≤ 500 rows).
 */
const D1_READ_MS = 0.5;
const D1_WRITE_MS = 2;
const D1_FEED_PAGE_MS = 1;
const FEED_QUERY = "select organisations by updated_at, removed_at";
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

  query(sql: string): void {
    if (!this.measuring) return;
    const label = queryLabel(sql);
    this.queries.set(label, (this.queries.get(label) ?? 0) + 1);
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
  const verb = text.split(" ", 1)[0];
  const table = /(?:from|into|update) "([a-z_]+)"/.exec(text)?.[1] ?? "?";
  const where = text.includes(" where ") ? text.slice(text.indexOf(" where ")) : "";
  const columns = [...new Set([...where.matchAll(/"[a-z_]+"\."([a-z_]+)"/g)].map((match) => match[1]))];
  return `${verb} ${table}${columns.length ? ` by ${columns.join(", ")}` : ""}`;
}

/** Estimated D1 work of one statement with that label, in ms. */
function queryMs(label: string): number {
  if (label === FEED_QUERY) return D1_FEED_PAGE_MS;
  return label.startsWith("select ") ? D1_READ_MS : D1_WRITE_MS;
}

/** Size a shared value would have at the target: its fixed part, plus its arrays' contents times SCALE. */
function scaledSize(text: string): number {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return bytes(text) * SCALE;
  }
  const emptied = JSON.stringify(parsed, (_key, value: unknown) => (Array.isArray(value) ? [] : value));
  const fixed = bytes(emptied);
  return fixed + (bytes(text) - fixed) * SCALE;
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

function countingD1(db: D1Database, counters: Counters): D1Database {
  return new Proxy(db, {
    get(target, property) {
      if (property === "prepare")
        return (sql: string) => {
          counters.query(sql);
          return target.prepare(sql);
        };
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
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
  const coldQueries = new Map(counters.queries);
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
    if (Date.now() - wallStart > WALL_CLOCK_LIMIT_MS && elapsed >= 60) {
      stoppedEarly = true;
      return false;
    }
    counters.second = Math.floor(elapsed);
    measuredSeconds = elapsed + tick / 1000;
  });
  counters.measuring = false;
  // The audit events of the measured window: every isolate at the target sends the same to the same queues.
  const auditInWindow = [...counters.queueMessages.values()].reduce((a, b) => a + b, 0);
  const audit = {
    perQueue: AUDIT_QUEUE_BINDINGS.map((name) => ((counters.queueMessages.get(name) ?? 0) / measuredSeconds) * SCALE),
    eventBytes: counters.queueBytes / Math.max(1, auditInWindow),
  };
  const trail = auditTrailFigures(audit);

  // The report, scaled to the target.
  const lines: string[] = [];
  const say = (line = "") => lines.push(line);
  say(
    `population 1/${SCALE} of the target: ${ORGANISATIONS} organisations, ${ORGANISATIONS * MEMBERS_PER_ORGANISATION} members, ` +
      `${dynamic.length} with ${dynamic.reduce((sum, org) => sum + org.secrets.length, 0)} dynamic secrets; one isolate, ${fmt(measuredSeconds)} simulated s measured` +
      `${stoppedEarly ? " (stopped early by the wall-clock limit)" : ""}, real ${fmt((Date.now() - wallStart) / 1000)} s`,
  );
  say(
    `the measured isolate is ${fmt(ISOLATE_AGE_SECONDS / 3600)} h old: each of its ${ORGANISATIONS} organisations seen ` +
      `at its steady-state last plan-gate read; ${expiredAtStart} of them read more than an hour before and waiting ` +
      `for their next request; then ${WARM_UP_SECONDS} s of warm-up`,
  );
  say(`requests measured: ${[...outcomes].map(([what, n]) => `${what} ×${n}`).join(", ")}`);
  say();
  say("KV by key prefix (at the target; per-key figures unscaled unless the key is shared by organisations):");
  const prefixes = new Map<string, KeyStats[]>();
  for (const stats of counters.keys.values())
    prefixes.set(stats.prefix, [...(prefixes.get(stats.prefix) ?? []), stats]);
  let maxWritesPerKey = 0;
  let largestProxiedRead = 0;
  let largestProxiedKey = "none";
  for (const [key, stats] of counters.keys) {
    const shared = stats.organisations.size > 1;
    const peak = Math.max(0, ...stats.writesBySecond.values());
    const perKey = shared ? Math.max(peak, (stats.writes / measuredSeconds) * LOCATIONS) : peak;
    maxWritesPerKey = Math.max(maxWritesPerKey, perKey);
    if (stats.largestProxiedRead > 0) {
      const size = shared && stats.sample !== undefined ? scaledSize(stats.sample) : stats.largestProxiedRead;
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
      `  ${prefix.padEnd(16)} keys ${String(all.length).padStart(6)}  reads/s ${fmt((reads / measuredSeconds) * SCALE, 0).padStart(8)}` +
        `  writes/s ${fmt((writes / measuredSeconds) * SCALE, 0).padStart(7)}  max writes to one key in 1 s ${peak}` +
        `  largest value ${fmt(largest / 1024, 2)} KiB${onPath ? " (proxied path)" : ""}${shared ? "  SHARED by organisations" : ""}`,
    );
  }
  say();
  say(
    "Durable Objects (requests/s at the target; per-entity objects: their busiest second, unscaled; " +
      "singletons and shards: × 1,000 isolates):",
  );
  const objectRate = (stats: ObjectStats) =>
    SHARED_OBJECTS.has(stats.binding)
      ? (stats.requests / measuredSeconds) * SCALE
      : Math.max(0, ...stats.requestsBySecond.values());
  let busiestObject = 0;
  let busiestObjectName = "none";
  for (const binding of OBJECT_BINDINGS) {
    const all = [...counters.objects.values()].filter((stats) => stats.binding === binding);
    const requests = all.reduce((sum, stats) => sum + stats.requests, 0);
    const busiest = all.reduce<ObjectStats | undefined>(
      (top, stats) => (top === undefined || objectRate(stats) > objectRate(top) ? stats : top),
      undefined,
    );
    if (busiest && objectRate(busiest) > busiestObject)
      [busiestObject, busiestObjectName] = [objectRate(busiest), `${binding} ${busiest.name}`];
    say(
      `  ${binding.padEnd(16)} objects ${String(all.length).padStart(6)}  requests/s ${fmt((requests / measuredSeconds) * SCALE, 0).padStart(7)}` +
        `  busiest ${busiest ? `${fmt(objectRate(busiest))} /s (${SHARED_OBJECTS.has(binding) ? busiest.name : "one entity"})` : "— (not called)"}` +
        `${SHARED_OBJECTS.has(binding) ? "  SHARED by every isolate" : ""}`,
    );
  }
  say();
  say(
    `D1 queries (at the target; busy: estimated seconds of the database's work per second, at ${D1_READ_MS} ms a read, ` +
      `${D1_WRITE_MS} ms a write, ${D1_FEED_PAGE_MS} ms a feed page):`,
  );
  let queryTotal = 0;
  let busyTotal = 0;
  for (const [label, n] of [...counters.queries].sort((a, b) => b[1] - a[1])) {
    queryTotal += n;
    const rate = (n / measuredSeconds) * SCALE;
    const busy = (rate * queryMs(label)) / 1000;
    busyTotal += busy;
    say(`  ${label.padEnd(58)} ${fmt(rate, 0).padStart(8)} /s  busy ${fmt(busy, 2).padStart(5)} s/s`);
  }
  const d1PerSecond = (queryTotal / measuredSeconds) * SCALE;
  say(
    `  ${"total".padEnd(58)} ${fmt(d1PerSecond, 0).padStart(8)} /s  busy ${fmt(busyTotal, 2).padStart(5)} s/s ` +
      `(one database does ≈ 1 s of work per second: ${fmt(1 / Math.max(busyTotal, 1e-9), 2)}× the target fills it)`,
  );
  const coldPlanReads = coldQueries.get("select organisations by identifier") ?? 0;
  const coldTotal = [...coldQueries.values()].reduce((a, b) => a + b, 0);
  say(
    `cold isolate (a new one, its first ${COLD_SECONDS} s of the same traffic, not scaled): ${coldTotal} D1 queries, ` +
      `${coldPlanReads} of them the plan gate's first sightings (${fmt(coldPlanReads / COLD_SECONDS)} /s; ` +
      `its slice is ${ORGANISATIONS} organisations, each read once on first sight: at ${fmt(SCALE)} isolates replaced ` +
      `every hour, ≈ ${fmt((ORGANISATIONS * SCALE) / 3600, 0)} reads/s at the target, the same as the hourly re-reads they replace)`,
  );

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
  say();
  say(
    `flood at one isolate: ${FLOOD_TOKENS} dynamic tokens naming random organisations in ${FLOOD_SECONDS} s → ` +
      `${[...refused].map(([status, n]) => `${status} ×${n}`).join(", ")}; ${floodQueries} D1 queries, ${floodReads} KV reads`,
  );
  say(`largest KV value read on the proxied path: ${largestProxiedKey.replace(/:.*/, ":…")}`);
  say(`busiest Durable Object: ${busiestObjectName}`);
  say();
  for (const line of auditTrailReport(audit)) say(line);

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
  console.log(
    `scale-sim: max writes/s per KV key ${fmt(maxWritesPerKey)}, largest KV value read on the proxied path ` +
      `${fmt(largestProxiedRead / 1024)} KiB, D1 queries/s ${fmt(d1PerSecond, 0).replaceAll(",", "")}, ` +
      `busiest Durable Object ${fmt(busiestObject, 0).replaceAll(",", "")} req/s, ` +
      `busiest audit queue ${fmt(trail.busiest, 0).replaceAll(",", "")} msg/s (${fmt(Math.floor(trail.headroom * 10) / 10)}× the target)`,
  );
  expect(outcomes.get("proxied 200")).toBeGreaterThan(0);
  expect(auditWritten).toBe(auditSent);
});
