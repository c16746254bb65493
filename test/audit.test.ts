// Audit trail: stored events and JSON log lines for logins (and the token routes), never a password or token.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SEED_PASSWORD } from "../scripts/seed-data";
import { detailJson, MAX_DETAIL } from "../src/audit/trail";
import { createServices } from "../src/services";
import { hashPassword } from "../src/credentials/password";
import { auditRowsOf, postLogin, randomIp, inOneRateWindow, storedAuditRows, type AuditRow } from "./helpers";
import { postRefresh, postRevoke } from "./refresh-helpers";

const USER_AGENT = "audit-test/1.0";

afterEach(() => {
  vi.restoreAllMocks();
});

async function freshMember(status = "active"): Promise<{ email: string; id: number }> {
  const email = `audit-${crypto.randomUUID().slice(0, 8)}@acme.example`;
  const row = await env.DB.prepare(
    "INSERT INTO members (identifier, organisation_id, email, password_hash, role, status) VALUES (?, 1, ?, ?, 'user', ?) RETURNING id",
  )
    .bind(`a${crypto.randomUUID().slice(0, 7)}`, email, await hashPassword(SEED_PASSWORD, env.PASSWORD_PEPPER!), status)
    .first<{ id: number }>();
  return { email, id: row!.id };
}

/** Logs in and returns the response, its request id and its (single) audit row. */
async function loginAudited(
  body: Record<string, string>,
  ip = randomIp(),
): Promise<{ response: Response; row: AuditRow; rows: AuditRow[] }> {
  const response = await postLogin(body, { "CF-Connecting-IP": ip, "User-Agent": USER_AGENT });
  const rows = await auditRowsOf(response.headers.get("X-Request-Id")!);
  expect(rows).toHaveLength(1);
  return { response, row: rows[0]!, rows };
}

describe("login events in the audit trail", () => {
  it("records a success with time, member, organisation, IP, user agent and request id", async () => {
    const { email, id } = await freshMember();
    const ip = randomIp();
    const before = Date.now();
    const { response, row } = await loginAudited({ email, password: SEED_PASSWORD }, ip);
    expect(response.status).toBe(200);
    expect(row).toMatchObject({
      event: "login.success",
      outcome: "success",
      member_id: id,
      organisation_id: 1,
      ip,
      user_agent: USER_AGENT,
      detail: null,
    });
    expect(row.request_id).toBe(response.headers.get("X-Request-Id"));
    expect(row.at).toBeGreaterThanOrEqual(before - 1000);
    expect(row.at).toBeLessThanOrEqual(Date.now() + 1000);
  });

  it("records failures with their reason and, when known, the member, never the password", async () => {
    const { email, id } = await freshMember();
    const password = `secret-guess-${crypto.randomUUID()}`;
    const wrong = await loginAudited({ email, password });
    expect(wrong.response.status).toBe(401);
    expect(wrong.row).toMatchObject({ event: "login.failure", outcome: "failure", member_id: id, organisation_id: 1 });
    expect(JSON.parse(wrong.row.detail!)).toEqual({ reason: "invalid_credentials" });

    const unknown = await loginAudited({ email: `x${email}`, password });
    expect(unknown.row).toMatchObject({ event: "login.failure", member_id: null, organisation_id: null });
    expect(JSON.parse(unknown.row.detail!)).toEqual({ reason: "invalid_credentials" });

    const results = await storedAuditRows();
    expect(JSON.stringify(results)).not.toContain(password);
    expect(JSON.stringify(results)).not.toContain(SEED_PASSWORD);
  });

  it("records 403 refusals after the password verified", async () => {
    const plan = await loginAudited({ email: "free@free.example", password: SEED_PASSWORD });
    expect(plan.response.status).toBe(403);
    expect(plan.row).toMatchObject({ event: "login.failure", member_id: 2554, organisation_id: 3 });
    expect(JSON.parse(plan.row.detail!)).toEqual({ reason: "plan_not_eligible" });

    const suspended = await freshMember("suspended");
    const refused = await loginAudited({ email: suspended.email, password: SEED_PASSWORD });
    expect(refused.response.status).toBe(403);
    expect(refused.row).toMatchObject({ member_id: suspended.id });
    expect(JSON.parse(refused.row.detail!)).toEqual({ reason: "suspended" });
  });

  it("records rate-limited attempts, at most once a minute per limit key in the trail but every time in the log", async () => {
    const { email } = await freshMember();
    for (let i = 0; i < 5; i++) expect((await postLogin({ email, password: "wrong" })).status).toBe(401);
    const first = await loginAudited({ email, password: SEED_PASSWORD });
    expect(first.response.status).toBe(429);
    expect(JSON.parse(first.row.detail!)).toEqual({ reason: "rate_limited", limit: "account" });

    const log = vi.spyOn(console, "log");
    const second = await postLogin({ email, password: SEED_PASSWORD });
    expect(second.status).toBe(429);
    const requestId = second.headers.get("X-Request-Id")!;
    // Long enough for the queue's consumer (no batch wait locally) to have written it, had one been sent.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await auditRowsOf(requestId, 1, 0)).toHaveLength(0);
    const lines = log.mock.calls
      .map(([line]) => JSON.parse(String(line)))
      .filter((line) => line.request_id === requestId && line.type === "audit");
    expect(lines).toEqual([
      expect.objectContaining({
        type: "audit",
        event: "login.failure",
        detail: { reason: "rate_limited", limit: "account", sampled: true },
      }),
    ]);
  });

  it("records the per-IP limit", async () => {
    await inOneRateWindow(async () => {
      const ip = randomIp();
      let limited: Response | undefined;
      for (let i = 0; i < 11; i++)
        limited = await postLogin({ email: `ip-${i}@acme.example`, password: "wrong" }, { "CF-Connecting-IP": ip });
      expect(limited!.status).toBe(429);
      const [row] = await auditRowsOf(limited!.headers.get("X-Request-Id")!);
      expect(row).toMatchObject({ event: "login.failure", ip, member_id: null });
      expect(JSON.parse(row!.detail!)).toEqual({ reason: "rate_limited", limit: "ip" });
    });
  }, 30_000);
});

describe("structured logs", () => {
  it("writes one JSON audit line per login, without the password or the tokens", async () => {
    const log = vi.spyOn(console, "log");
    const { email, id } = await freshMember();
    const response = await postLogin({ email, password: SEED_PASSWORD }, { "User-Agent": USER_AGENT });
    const body = (await response.json()) as Record<string, string>;
    const requestId = response.headers.get("X-Request-Id")!;
    const lines = log.mock.calls.map(([line]) => String(line));
    const mine = lines
      .map((line) => JSON.parse(line))
      .filter((line) => line.type === "audit" && line.request_id === requestId);
    expect(mine).toEqual([
      expect.objectContaining({
        level: "info",
        event: "login.success",
        outcome: "success",
        member_id: id,
        organisation_id: 1,
        user_agent: USER_AGENT,
      }),
    ]);
    expect(Date.parse(mine[0].at)).not.toBeNaN();
    for (const secret of [SEED_PASSWORD, body.access_token!, body.refresh_token!])
      expect(lines.join("\n")).not.toContain(secret);
  });
});

describe("the audit() API", () => {
  const event = { event: "revoke", outcome: "success", requestId: "", ip: "192.0.2.1" } as const;

  const downQueue = {
    send: async () => {
      throw new Error("Queues are down");
    },
  } as unknown as Queue;

  it("never throws when the queue and the audit sink fail or refuse, and logs the failure", async () => {
    const errors = vi.spyOn(console, "error");
    const broken = {
      idFromName: () => {
        throw new Error("Durable Objects are down");
      },
    } as unknown as Cloudflare.Env["AUDIT_SINK"];
    const full = {
      idFromName: (name: string) => name,
      get: () => ({ append: async () => false }),
    } as unknown as Cloudflare.Env["AUDIT_SINK"];
    for (const sink of [broken, full]) {
      errors.mockClear();
      const ctx = createExecutionContext();
      const bindings = { ...env, AUDIT_QUEUE_0: downQueue, AUDIT_QUEUE_1: downQueue, AUDIT_SINK: sink };
      expect(() =>
        createServices(bindings).audit.record(ctx, { ...event, requestId: crypto.randomUUID() }),
      ).not.toThrow();
      await waitOnExecutionContext(ctx);
      expect(
        errors.mock.calls.map(([line]) => String(line)).some((line) => line.includes('"audit_write_failed"')),
      ).toBe(true);
    }
  });

  it("hands an event a queue refuses to its AuditSink shard, which writes it to R2", async () => {
    const warnings = vi.spyOn(console, "warn");
    const errors = vi.spyOn(console, "error");
    const requestId = crypto.randomUUID();
    const ctx = createExecutionContext();
    createServices({ ...env, AUDIT_QUEUE_0: downQueue, AUDIT_QUEUE_1: downQueue }).audit.record(ctx, {
      ...event,
      requestId,
    });
    await waitOnExecutionContext(ctx);
    const lines = warnings.mock.calls.map(([line]) => JSON.parse(String(line)));
    expect(lines).toContainEqual(expect.objectContaining({ event: "audit_queue_failed", request_id: requestId }));
    expect(errors.mock.calls.some(([line]) => String(line).includes('"audit_write_failed"'))).toBe(false);
    expect(await auditRowsOf(requestId)).toEqual([expect.objectContaining({ event: "revoke", request_id: requestId })]);
  });

  it("redacts detail keys that look like credentials", async () => {
    const requestId = crypto.randomUUID();
    const ctx = createExecutionContext();
    createServices(env).audit.record(ctx, { ...event, requestId, detail: { refresh_token: "ggr_x", reason: "kept" } });
    await waitOnExecutionContext(ctx);
    const [row] = await auditRowsOf(requestId);
    expect(JSON.parse(row!.detail!)).toEqual({ refresh_token: "[redacted]", reason: "kept" });
  });

  it(`clips the string values of a long detail, never its JSON, to stay within ${MAX_DETAIL} characters`, async () => {
    const requestId = crypto.randomUUID();
    const members = Array.from({ length: 100 }, (_, n) => 1_000_000_000 + n).join(" ");
    const detail = { members, organisations: "acme", quote: `"\\`.repeat(400), signedAt: 1_700_000_000 };
    const ctx = createExecutionContext();
    createServices(env).audit.record(ctx, { ...event, event: "member.sign-out", requestId, detail });
    await waitOnExecutionContext(ctx);
    const [row] = await auditRowsOf(requestId);
    expect(row!.detail!.length).toBeLessThanOrEqual(MAX_DETAIL);
    const stored = JSON.parse(row!.detail!) as Record<string, unknown>;
    expect(stored).toMatchObject({ organisations: "acme", signedAt: 1_700_000_000, truncated: true });
    expect(members.startsWith(stored.members as string)).toBe(true);
    expect((stored.members as string).length).toBeGreaterThan(100);
    expect(detail.quote.startsWith(stored.quote as string)).toBe(true);
  });

  it("keeps a detail that fits whole, unmarked, and never splits a surrogate pair when clipping", () => {
    const fits = { reason: "x".repeat(MAX_DETAIL - 20) };
    expect(detailJson(fits)).toBe(JSON.stringify(fits));
    for (let pad = 0; pad < 4; pad++) {
      const text = detailJson({ agent: "a".repeat(pad) + "😀".repeat(MAX_DETAIL) });
      expect(text.length).toBeLessThanOrEqual(MAX_DETAIL);
      const agent = (JSON.parse(text) as { agent: string }).agent;
      expect(agent).not.toMatch(/[\uD800-\uDBFF]$/);
      expect(text).not.toContain("\\ud83d");
    }
    const manyKeys = Object.fromEntries(Array.from({ length: 200 }, (_, n) => [`key${n}`, "v"]));
    expect(JSON.parse(detailJson(manyKeys))).toEqual({ truncated: true });
  });
});

describe("token routes use the same trail", () => {
  it("records refresh and revoke with the member and organisation", async () => {
    const { email, id } = await freshMember();
    const login = (await (await postLogin({ email, password: SEED_PASSWORD })).json()) as Record<string, string>;
    const refreshed = await postRefresh({ refresh_token: login.refresh_token });
    expect(refreshed.status).toBe(200);
    const [refreshRow] = await auditRowsOf(refreshed.headers.get("X-Request-Id")!);
    expect(refreshRow).toMatchObject({
      event: "refresh.success",
      outcome: "success",
      member_id: id,
      organisation_id: 1,
    });

    const { refresh_token } = (await refreshed.json()) as Record<string, string>;
    const revoked = await postRevoke({ refresh_token });
    expect(revoked.status).toBe(200);
    const [revokeRow] = await auditRowsOf(revoked.headers.get("X-Request-Id")!);
    expect(revokeRow).toMatchObject({ event: "revoke", member_id: id });
    const results = (await storedAuditRows()).filter((row) => row.member_id === id).map((row) => row.detail);
    expect(JSON.stringify(results)).not.toContain(refresh_token!);
    expect(JSON.stringify(results)).not.toContain(login.refresh_token!);
  });
});
