// The failure policy (docs/operating.md § Failure policy) through the HTTP surface: D1, KV, the Durable Objects and the
// bindings throwing, hanging past the bounded wait or answering garbage; 503 with Retry-After, never a 401, no half-writes.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { consumeAuditBatch } from "../src/audit/consumer";
import { Logger } from "../src/log";
import { REVOCATION_LAYOUT } from "../src/revocation/record";
import { createWorker } from "../src/worker";
import {
  faultSwitch,
  faultyApp,
  faultyD1,
  faultyKv,
  faultyMetrics,
  faultyObjects,
  faultyQueue,
  faultyR2,
  faultyRateLimit,
  type Fault,
  type FaultSwitch,
} from "./fault-fakes";
import {
  adminRequest,
  auditRowsOf,
  fakeOrigin,
  GATEWAY,
  fixedClaims,
  gateway,
  login,
  newArchitectOrganisation,
  now,
  problem,
  signWithJose,
} from "./helpers";
import { loginAccount, newAccount, postRefresh, postRevoke, refreshOk, storedRecord } from "./refresh-helpers";
import { sha256Hex } from "../src/digest";
import { SEED_PASSWORD } from "../scripts/seed-data";

// A hanging fake costs a whole bounded wait (TEST_WAIT_MS), some tests several: more than the default 5 s on a busy machine.
vi.setConfig({ testTimeout: 20_000 });

let errors: ReturnType<typeof vi.spyOn>;
/** The JSON lines logged through `console.error` so far. */
const errorLines = (): Record<string, any>[] => errors.mock.calls.map((call: unknown[]) => JSON.parse(String(call[0])));
beforeEach(() => {
  errors = vi.spyOn(console, "error").mockImplementation(() => {});
  vi.spyOn(console, "warn").mockImplementation(() => {});
});
afterEach(() => vi.restoreAllMocks());

/** 503 `temporarily_unavailable` with `Retry-After: 5`, no cookie, no token. */
async function expectUnavailable(response: Response, dependency?: string): Promise<void> {
  const text = await response.clone().text();
  expect(response.status, text).toBe(503);
  expect(response.headers.get("Retry-After")).toBe("5");
  expect(response.headers.get("Set-Cookie")).toBeNull();
  const body = await problem(response);
  expect(body.code).toBe("temporarily_unavailable");
  expect(text).not.toContain("access_token");
  if (dependency) {
    const lines = errorLines();
    expect(lines).toContainEqual(
      expect.objectContaining({ event: "dependency_unavailable", dependency, request_id: body.request_id }),
    );
  }
}

const FAULTS: Fault[] = ["throws", "hangs"];
const isMemberRead = (sql: string) => sql.startsWith("select") && sql.includes('from "members"');

describe("POST /authenticate", () => {
  it.each([...FAULTS, "garbage" as const])("D1's member read %s: 503, no token", async (fault) => {
    const account = await newAccount();
    const app = faultyApp({ ...env, DB: faultyD1(faultSwitch(fault, isMemberRead)) });
    await expectUnavailable(await app.post("/authenticate", { email: account.email, password: SEED_PASSWORD }), "d1");
  });

  it.each(FAULTS)(
    "the back-off object %s: 503 for a right and a wrong password alike (no oracle, no free guess)",
    async (fault) => {
      const account = await newAccount();
      const app = faultyApp({ ...env, LOGIN_BACKOFF: faultyObjects(faultSwitch(fault), env.LOGIN_BACKOFF) });
      await expectUnavailable(await app.post("/authenticate", { email: account.email, password: SEED_PASSWORD }));
      await expectUnavailable(await app.post("/authenticate", { email: account.email, password: "wrong-password" }));
    },
  );

  it("the back-off object failing after a wrong password (the failure cannot be counted): 503, not 401", async () => {
    const account = await newAccount();
    const app = faultyApp({
      ...env,
      LOGIN_BACKOFF: faultyObjects(
        faultSwitch("throws", (method) => method === "fail"),
        env.LOGIN_BACKOFF,
      ),
    });
    await expectUnavailable(await app.post("/authenticate", { email: account.email, password: "wrong-password" }));
  });

  it.each(FAULTS)(
    "the refresh record write %s: 503 and no token at all (never a token without its record)",
    async (fault) => {
      const account = await newAccount();
      const kvFaults = faultSwitch(fault, (call) => call.startsWith("put refresh:"));
      const app = faultyApp({ ...env, TOKENS: faultyKv(kvFaults) });
      const refused = await app.post("/authenticate", { email: account.email, password: SEED_PASSWORD });
      await expectUnavailable(refused, "kv");
      expect(kvFaults.failed).toBe(1);
      const [row] = await auditRowsOf(refused.headers.get("X-Request-Id")!);
      expect(row, "audited as a failed login, not a success").toMatchObject({ event: "login.failure" });
      expect(JSON.parse(row!.detail!)).toEqual({ reason: "temporarily_unavailable" });
      // The account is not harmed: the back-off was cleared, the next login works.
      expect((await loginAccount(account)).access_token).toBeTypeOf("string");
    },
  );

  it.each(FAULTS)(
    "LOGIN_LIMITER %s: the login goes on (the back-off still guards accounts), logged once a minute",
    async (fault) => {
      const account = await newAccount();
      const limiter = faultSwitch(fault);
      const app = faultyApp({ ...env, LOGIN_LIMITER: faultyRateLimit(limiter) });
      for (let i = 0; i < 2; i++) {
        const response = await app.post("/authenticate", { email: account.email, password: SEED_PASSWORD });
        expect(response.status, await response.clone().text()).toBe(200);
      }
      expect(limiter.failed).toBe(2);
      const lines = errorLines();
      expect(lines.filter((line) => line.event === "login_limit_failed")).toHaveLength(1);
    },
  );
});

describe("POST /authenticate/refresh", () => {
  const refresh = (app: ReturnType<typeof faultyApp>, token: string) =>
    app.post("/authenticate/refresh", { refresh_token: token });

  it.each([...FAULTS, "garbage" as const])(
    "KV's record read %s: 503, and the token still works afterwards",
    async (fault) => {
      const { refresh_token } = await loginAccount(await newAccount());
      const app = faultyApp({ ...env, TOKENS: faultyKv(faultSwitch(fault, (call) => call.startsWith("get refresh"))) });
      await expectUnavailable(await refresh(app, refresh_token), "kv");
      expect((await refreshOk(refresh_token)).refresh_token).toBeTypeOf("string");
    },
  );

  it.each([...FAULTS, "garbage" as const])(
    "D1's member read %s: 503, and the token still works afterwards",
    async (fault) => {
      const { refresh_token } = await loginAccount(await newAccount());
      const app = faultyApp({ ...env, DB: faultyD1(faultSwitch(fault, isMemberRead)) });
      await expectUnavailable(await refresh(app, refresh_token), "d1");
      expect((await refreshOk(refresh_token)).refresh_token).toBeTypeOf("string");
    },
  );

  it.each(FAULTS)("the family object %s: 503, and the token still works afterwards", async (fault) => {
    const { refresh_token } = await loginAccount(await newAccount());
    const app = faultyApp({ ...env, REFRESH_FAMILIES: faultyObjects(faultSwitch(fault), env.REFRESH_FAMILIES) });
    await expectUnavailable(await refresh(app, refresh_token), "refresh_family");
    expect((await refreshOk(refresh_token)).refresh_token).toBeTypeOf("string");
  });

  it.each(FAULTS)(
    "the successor's record write %s: 503 before anything was decided; the token still works",
    async (fault) => {
      const { refresh_token } = await loginAccount(await newAccount());
      const presentedKey = `put refresh:${await sha256Hex(refresh_token)}`;
      const app = faultyApp({
        ...env,
        TOKENS: faultyKv(faultSwitch(fault, (call) => call.startsWith("put refresh:") && call !== presentedKey)),
      });
      await expectUnavailable(await refresh(app, refresh_token), "kv");
      expect((await storedRecord(refresh_token))?.usedAt).toBeUndefined();
      expect((await refreshOk(refresh_token)).refresh_token).toBeTypeOf("string");
    },
  );

  it("KV's copy of a decided rotation failing: 200 with the successor (the object decided), which works", async () => {
    const { refresh_token } = await loginAccount(await newAccount());
    const presentedKey = `put refresh:${await sha256Hex(refresh_token)}`;
    const kvFaults = faultSwitch("throws", (call) => call === presentedKey);
    const app = faultyApp({ ...env, TOKENS: faultyKv(kvFaults) });
    const response = await refresh(app, refresh_token);
    expect(response.status, await response.clone().text()).toBe(200);
    expect(kvFaults.failed).toBe(1);
    const { refresh_token: successor } = await response.json<Record<string, string>>();
    expect((await refreshOk(successor!)).refresh_token).toBeTypeOf("string");
  });

  it("a 503 after the object rotated: the retry within the grace window gets the same successor", async () => {
    const { refresh_token } = await loginAccount(await newAccount());
    // The object decides, then its answer is lost on the way back (as if it came after the deadline).
    const families = env.REFRESH_FAMILIES;
    const lossy = {
      ...families,
      idFromName: (name: string) => families.idFromName(name),
      get: (id: DurableObjectId) => {
        const stub = families.get(id);
        return {
          exchange: async (request: unknown) => {
            await stub.exchange(request as never);
            throw new Error("answer lost");
          },
        };
      },
    } as unknown as typeof families;
    const app = faultyApp({ ...env, REFRESH_FAMILIES: lossy });
    await expectUnavailable(await refresh(app, refresh_token), "refresh_family");
    const first = await refreshOk(refresh_token);
    const again = await refreshOk(refresh_token);
    expect(again.refresh_token).toBe(first.refresh_token);
  });
});

describe("POST /authenticate/revoke", () => {
  it.each([...FAULTS, "garbage" as const])(
    "KV's record read %s: 503 (never a 200 for a revoke that did not happen)",
    async (fault) => {
      const { refresh_token } = await loginAccount(await newAccount());
      const app = faultyApp({
        ...env,
        TOKENS: faultyKv(faultSwitch(fault, (call) => call.startsWith("get refresh:"))),
      });
      await expectUnavailable(await app.post("/authenticate/revoke", { refresh_token }), "kv");
      expect((await refreshOk(refresh_token)).refresh_token, "not revoked, and the client knows").toBeTypeOf("string");
    },
  );

  it.each(FAULTS)(
    "the family object %s: 503; the token still works until the retried revoke succeeds",
    async (fault) => {
      const { refresh_token } = await loginAccount(await newAccount());
      const app = faultyApp({ ...env, REFRESH_FAMILIES: faultyObjects(faultSwitch(fault), env.REFRESH_FAMILIES) });
      await expectUnavailable(await app.post("/authenticate/revoke", { refresh_token }), "refresh_family");
      const { refresh_token: next } = await refreshOk(refresh_token);
      expect((await postRevoke({ refresh_token: next })).status).toBe(200);
      expect((await postRefresh({ refresh_token: next })).status).toBe(400);
    },
  );

  it("KV's copy of a done revocation failing: 200, and the family is refused (the object decided)", async () => {
    const { refresh_token } = await loginAccount(await newAccount());
    const kvFaults = faultSwitch("throws", (call) => call.startsWith("put refresh-family:"));
    const app = faultyApp({ ...env, TOKENS: faultyKv(kvFaults) });
    expect((await app.post("/authenticate/revoke", { refresh_token })).status).toBe(200);
    expect(kvFaults.failed).toBe(1);
    expect((await postRefresh({ refresh_token })).status).toBe(400);
  });

  it.each(FAULTS)("revoke-all: the member marker write %s: 503", async (fault) => {
    const { access_token } = await loginAccount(await newAccount());
    const app = faultyApp({
      ...env,
      TOKENS: faultyKv(faultSwitch(fault, (call) => call.startsWith("put refresh-member:"))),
    });
    await expectUnavailable(
      await app.post("/authenticate/revoke", { all: true }, { Authorization: `Bearer ${access_token}` }),
      "kv",
    );
  });

  it.each(FAULTS)("revoke-all: the Revocations object %s: 503", async (fault) => {
    const { access_token } = await loginAccount(await newAccount());
    const app = faultyApp({ ...env, REVOCATIONS: faultyObjects(faultSwitch(fault), env.REVOCATIONS) });
    await expectUnavailable(
      await app.post("/authenticate/revoke", { all: true }, { Authorization: `Bearer ${access_token}` }),
      "revocations",
    );
  });
});

describe("/authenticate/secrets", () => {
  const isSecretWrite = (sql: string) => /^(insert into dynamic_secrets|update "dynamic_secrets")/i.test(sql.trim());

  it.each(FAULTS)("create: D1's insert %s: 503, and no secret was stored", async (fault) => {
    const org = await newArchitectOrganisation("professional", "f");
    const app = faultyApp({ ...env, DB: faultyD1(faultSwitch(fault, isSecretWrite)) });
    await expectUnavailable(
      await app.post("/authenticate/secrets", {}, { Authorization: `Bearer ${org.token}` }),
      "d1",
    );
    const listed = await gateway("/authenticate/secrets", { headers: { Authorization: `Bearer ${org.token}` } });
    expect((await listed.json<{ secrets: unknown[] }>()).secrets).toEqual([]);
  });

  it.each([...FAULTS, "garbage" as const])("list: D1's member read %s: 503", async (fault) => {
    const org = await newArchitectOrganisation("professional", "f");
    const app = faultyApp({
      ...env,
      DB: faultyD1(faultSwitch(fault, (sql) => sql.startsWith("select") && sql.includes('"members"."status"'))),
    });
    await expectUnavailable(
      await app.request("/authenticate/secrets", { headers: { Authorization: `Bearer ${org.token}` } }),
      "d1",
    );
  });

  it("create: KV failing after D1 stored the secret: 201 with the secret, which signs working tokens", async () => {
    fakeOrigin();
    const org = await newArchitectOrganisation("professional", "f");
    const app = faultyApp({
      ...env,
      TOKENS: faultyKv(faultSwitch("throws", (call) => call.startsWith("put dynsec:"))),
    });
    const created = await app.post("/authenticate/secrets", {}, { Authorization: `Bearer ${org.token}` });
    expect(created.status, await created.clone().text()).toBe(201);
    const { kid, secret } = await created.json<Record<string, string>>();
    const token = await signWithJose(
      {
        iat: now(),
        memberEntityIdentifier: org.member,
        organisationEntityIdentifier: org.identifier,
        scope: "organisation",
        secretType: "dynamic",
      },
      secret!,
      { kid },
    );
    expect((await app.request("/grids", { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
  });

  it.each(FAULTS)("revoke: D1's update %s: 503, and the secret stays live", async (fault) => {
    const org = await newArchitectOrganisation("professional", "f");
    const headers = { Authorization: `Bearer ${org.token}` };
    const created = await gateway("/authenticate/secrets", { method: "POST", headers });
    const { kid } = await created.json<Record<string, string>>();
    const app = faultyApp({ ...env, DB: faultyD1(faultSwitch(fault, isSecretWrite)) });
    await expectUnavailable(await app.request(`/authenticate/secrets/${kid}`, { method: "DELETE", headers }), "d1");
    const listed = await gateway("/authenticate/secrets", { headers });
    expect((await listed.json<{ secrets: { kid: string }[] }>()).secrets.map((s) => s.kid)).toEqual([kid]);
  });
});

describe("the proxied path", () => {
  const get = (app: ReturnType<typeof faultyApp>, token: string) =>
    app.request("/grids", { headers: { Authorization: `Bearer ${token}` } });

  it("a fixed-secret token needs no storage while the caches are fresh, and fails closed (503) past them", async () => {
    fakeOrigin();
    const faults = faultSwitch();
    const app = faultyApp({
      ...env,
      DB: faultyD1(faults),
      TOKENS: faultyKv(faults),
      REFRESH_FAMILIES: faultyObjects(faults, env.REFRESH_FAMILIES),
      LOGIN_BACKOFF: faultyObjects(faults, env.LOGIN_BACKOFF),
      REVOCATIONS: faultyObjects(faults, env.REVOCATIONS),
    });
    const token = await signWithJose(fixedClaims({ exp: now() + 3600 }));
    expect((await get(app, token)).status).toBe(200);
    faults.fault = "throws";
    const start = app.clock.now;
    app.clock.now = start + 18_000;
    expect((await get(app, token)).status, "every storage dependency down, caches fresh").toBe(200);
    expect(faults.failed).toBe(0);
    app.clock.now = start + 30_000;
    await expectUnavailable(await get(app, token), "kv");
  });

  it.each([...FAULTS, "garbage" as const])(
    "the revocation record re-read %s past its 29 s bound: 503",
    async (fault) => {
      fakeOrigin();
      const faults = faultSwitch(undefined, (call) => call === `get ${REVOCATION_LAYOUT.key(0)}`);
      const app = faultyApp({ ...env, TOKENS: faultyKv(faults) });
      const token = await signWithJose(fixedClaims({ exp: now() + 3600 }));
      expect((await get(app, token)).status).toBe(200);
      faults.fault = fault;
      app.clock.now += 30_000;
      await expectUnavailable(await get(app, token), "kv");
      faults.fault = undefined;
      expect((await get(app, token)).status, "recovers with the dependency").toBe(200);
    },
  );

  it("a plan-cache miss while D1 fails: 503 (never a 403 or a 500)", async () => {
    fakeOrigin();
    const org = await newArchitectOrganisation("professional", "f");
    const app = faultyApp({ ...env, DB: faultyD1(faultSwitch("throws")) });
    await expectUnavailable(await get(app, org.token), "d1");
  });

  it("dynamic-secret tokens: served from the caches within their bounds while D1 fails, 503 past them", async () => {
    fakeOrigin();
    const org = await newArchitectOrganisation("professional", "f");
    const created = await gateway("/authenticate/secrets", {
      method: "POST",
      headers: { Authorization: `Bearer ${org.token}` },
    });
    const { kid, secret } = await created.json<Record<string, string>>();
    // D1 fails for the dynamic-secret look-ups (the plan gate's own failure policy is tested with it).
    const faults = faultSwitch(undefined, (sql) => sql.includes('"dynamic_secrets"') || sql.includes('"members"'));
    const app = faultyApp({ ...env, DB: faultyD1(faults) });
    const token = await signWithJose(
      {
        iat: now(),
        exp: now() + 3600,
        memberEntityIdentifier: org.member,
        organisationEntityIdentifier: org.identifier,
        scope: "organisation",
        secretType: "dynamic",
      },
      secret!,
      { kid },
    );
    expect((await get(app, token)).status).toBe(200);
    faults.fault = "throws";
    const start = app.clock.now;
    app.clock.now = start + 20_000;
    expect((await get(app, token)).status, "isolate cache").toBe(200);
    app.clock.now = start + 40_000;
    expect((await get(app, token)).status, "KV copy, under 55 s since its D1 read").toBe(200);
    app.clock.now = start + 56_000;
    await expectUnavailable(await get(app, token), "d1");
  });

  it.each(FAULTS)("an API limit binding that %s lets requests through, logged once a minute", async (fault) => {
    const seen = fakeOrigin();
    const org = await newArchitectOrganisation("professional", "f");
    const limiter = faultSwitch(fault);
    const app = faultyApp({
      ...env,
      API_LIMIT_PROFESSIONAL: faultyRateLimit(limiter),
      API_RATE_LIMITS: "professional=3,enterprise=6000",
    });
    for (let i = 0; i < 5; i++) expect((await get(app, org.token)).status).toBe(200);
    expect(seen).toHaveLength(5);
    expect(limiter.failed).toBe(5);
    const lines = errorLines();
    expect(lines.filter((line) => line.event === "api_limit_failed")).toHaveLength(1);
  });

  it("METRICS failing never fails a request, logged once per isolate", async () => {
    fakeOrigin();
    const metrics = faultyMetrics(faultSwitch("throws"));
    const app = faultyApp({ ...env, METRICS: metrics });
    const token = await signWithJose(fixedClaims());
    for (let i = 0; i < 3; i++) expect((await get(app, token)).status).toBe(200);
    expect((await app.post("/authenticate", { email: "nobody@example.com", password: "x" })).status).toBe(401);
    const lines = errorLines();
    expect(lines.filter((line) => line.event === "metrics_write_failed")).toHaveLength(1);
  });
});

describe("the admin routes", () => {
  /** A signed admin request to `route`, sent to `app`. */
  async function adminTo(app: ReturnType<typeof faultyApp>, route: string, body: unknown): Promise<Response> {
    const path = `/authenticate/admin/${route}`;
    return app.request(path, await adminRequest(path, body));
  }

  it("a failing Revocations object: 503, retried safely", async () => {
    const account = await newAccount();
    const body = { member_id: account.memberId };
    const failing = faultyApp({ ...env, REVOCATIONS: faultyObjects(faultSwitch("throws"), env.REVOCATIONS) });
    await expectUnavailable(await adminTo(failing, "member/sign-out", body), "revocations");
    const { access_token } = await login(account.email);
    expect(access_token).toBeTypeOf("string");
    expect((await adminTo(faultyApp(env), "member/sign-out", body)).status).toBe(200);
  });

  it.each(FAULTS)("D1 that %s: 503, nothing written", async (fault) => {
    const identifier = `f${crypto.randomUUID().slice(0, 8)}`;
    const failing = faultyApp({ ...env, DB: faultyD1(faultSwitch(fault)) });
    const body = { identifier, name: "Faulty", domain: `${identifier}.example`, plan: "free" };
    await expectUnavailable(await adminTo(failing, "org/create", body), "d1");
    await expectUnavailable(await adminTo(failing, "audit", {}), "d1");
    const stored = await env.DB.prepare("SELECT id FROM organisations WHERE identifier = ?").bind(identifier).first();
    expect(stored).toBeNull();
  });
});

describe("the audit trail", () => {
  /** Both audit queues behind one switch. */
  const faultyQueues = (faults: FaultSwitch) => ({
    AUDIT_QUEUE_0: faultyQueue(faults, env.AUDIT_QUEUE_0),
    AUDIT_QUEUE_1: faultyQueue(faults, env.AUDIT_QUEUE_1),
  });

  it.each(FAULTS)(
    "a queue that %s: the login answers before the trail's wait, and its event reaches R2 through the AuditSink buffer",
    async (fault) => {
      const warnings = vi.spyOn(console, "warn").mockImplementation(() => {});
      const account = await newAccount();
      const queues = faultSwitch(fault);
      const bindings = { ...env, ...faultyQueues(queues) };
      const app = faultyApp(bindings);
      const ctx = createExecutionContext();
      const started = Date.now();
      const response = await createWorker({ servicesFor: () => app.services }).fetch(
        new Request(`${GATEWAY}/authenticate`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ email: account.email, password: SEED_PASSWORD }),
        }),
        bindings,
        ctx,
      );
      expect(response.status).toBe(200);
      if (fault === "hangs") expect(Date.now() - started, "the request never waits on the trail").toBeLessThan(1000);
      await waitOnExecutionContext(ctx);
      expect(queues.failed).toBe(1);
      const requestId = response.headers.get("X-Request-Id")!;
      expect(warnings.mock.calls.map((call) => JSON.parse(String(call[0])))).toContainEqual(
        expect.objectContaining({ event: "audit_queue_failed", request_id: requestId }),
      );
      expect(await auditRowsOf(requestId)).toEqual([
        expect.objectContaining({ event: "login.success", member_id: account.memberId }),
      ]);
    },
  );

  it("the queue and the AuditSink both failing: 200, the event's JSON line is its only record", async () => {
    const account = await newAccount();
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    const app = faultyApp({
      ...env,
      ...faultyQueues(faultSwitch("throws")),
      AUDIT_SINK: faultyObjects(faultSwitch("throws"), env.AUDIT_SINK),
    });
    const response = await app.post("/authenticate", { email: account.email, password: SEED_PASSWORD });
    expect(response.status).toBe(200);
    const requestId = response.headers.get("X-Request-Id")!;
    expect(errorLines()).toContainEqual(
      expect.objectContaining({ event: "audit_write_failed", request_id: requestId }),
    );
    const lines = log.mock.calls.map((call) => JSON.parse(String(call[0])));
    expect(lines).toContainEqual(
      expect.objectContaining({ type: "audit", event: "login.success", request_id: requestId }),
    );
  });

  it.each(FAULTS)(
    "R2 that %s behind the queue: logins answer, nothing is acknowledged, and every event is written once R2 answers",
    async (fault) => {
      const account = await newAccount();
      const sent: unknown[] = [];
      const capturing = { send: async (body: unknown) => void sent.push(body) } as unknown as Queue;
      const app = faultyApp({ ...env, AUDIT_QUEUE_0: capturing, AUDIT_QUEUE_1: capturing });
      const response = await app.post("/authenticate", { email: account.email, password: SEED_PASSWORD });
      expect(response.status).toBe(200);
      const requestId = response.headers.get("X-Request-Id")!;
      expect(sent).toEqual([expect.objectContaining({ request_id: requestId })]);
      const delivery = (attempts: number) => {
        const ids: string[] = [];
        const retried: string[] = [];
        const messages = sent.map((body, n) => ({
          id: `m${n}`,
          timestamp: new Date(),
          attempts,
          body,
          ack: () => ids.push(`m${n}`),
          retry: () => retried.push(`m${n}`),
        }));
        return { batch: { queue: "gridgate-local-audit-0", messages } as unknown as MessageBatch, ids, retried };
      };
      const down = delivery(1);
      const bucket = faultyR2(faultSwitch(fault));
      await consumeAuditBatch(down.batch, { bucket, logger: new Logger(), waitMs: 500 });
      expect(down).toMatchObject({ ids: [], retried: ["m0"] });
      expect(await auditRowsOf(requestId, 1, 0)).toEqual([]);
      const up = delivery(2);
      await consumeAuditBatch(up.batch, { bucket: env.AUDIT_BUCKET, logger: new Logger() });
      expect(up).toMatchObject({ ids: ["m0"], retried: [] });
      expect(await auditRowsOf(requestId)).toEqual([expect.objectContaining({ event: "login.success" })]);
    },
  );

  it.each(FAULTS)("R2 that %s for the audit reader: 503 (never a 500), nothing else affected", async (fault) => {
    const path = "/authenticate/admin/audit";
    const app = faultyApp({ ...env, AUDIT_BUCKET: faultyR2(faultSwitch(fault)) });
    await expectUnavailable(await app.request(path, await adminRequest(path, {})), "r2");
    const account = await newAccount();
    expect((await app.post("/authenticate", { email: account.email, password: SEED_PASSWORD })).status).toBe(200);
  });

  it("R2 answering objects that are not the trail's: skipped, the reader answers 200", async () => {
    const path = "/authenticate/admin/audit";
    const app = faultyApp({ ...env, AUDIT_BUCKET: faultyR2(faultSwitch("garbage")) });
    const response = await app.request(path, await adminRequest(path, {}));
    expect(response.status, await response.clone().text()).toBe(200);
    expect(await response.json()).toEqual({ events: [], next: null });
  });
});
