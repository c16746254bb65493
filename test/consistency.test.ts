// Guarantees that hold across locations because a Durable Object decides: refresh families and the login back-off.
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { SEED_PASSWORD } from "../scripts/seed-data";
import { hashPassword } from "../src/credentials/password";
import { problem } from "./helpers";
import { backoffRecord, familyObject, freeze, location, staleKv, type Clock } from "./locations";
import { loginAccount, newAccount, sha256Hex, storedRecord } from "./refresh-helpers";

const GRACE_MS = 10_000;
const FREE_ATTEMPTS = 5;

async function refreshAt(at: ReturnType<typeof location>, token: string): Promise<Response> {
  return at.post("/authenticate/refresh", { refresh_token: token });
}

async function expectInvalidGrant(response: Response): Promise<void> {
  expect(response.status).toBe(400);
  expect((await problem(response)).code).toBe("invalid_grant");
}

describe("refresh families decided by one Durable Object each", () => {
  it("50 concurrent refreshes of one token from 50 locations: exactly one successor, and the session goes on", async () => {
    const clock: Clock = { now: Date.now() };
    const t0 = (await loginAccount(await newAccount())).refresh_token as string;
    const locations = Array.from({ length: 50 }, () => location(clock));
    const responses = await Promise.all(locations.map((at) => refreshAt(at, t0)));
    expect(responses.map((response) => response.status)).toEqual(Array(50).fill(200));
    const bodies = await Promise.all(responses.map((response) => response.json<Record<string, any>>()));
    const successors = new Set(bodies.map((body) => body.refresh_token));
    expect(successors.size).toBe(1);
    const [t1] = [...successors] as [string];

    const familyId = (await storedRecord(t0))!.familyId;
    const state = await familyObject(familyId).state();
    expect(state).toMatchObject({ revokedAt: null, reason: null });
    expect(state!.tokens).toHaveLength(2);
    expect(state!.tokens[0]).toMatchObject({ hash: await sha256Hex(t0), successorHash: await sha256Hex(t1) });

    const next = await refreshAt(locations[7]!, t1);
    expect(next.status).toBe(200);
    expect((await next.json<Record<string, any>>()).refresh_token).not.toBe(t1);
  }, 30_000);

  it("reuse after the grace window revokes the family in its object and in KV, newest token included", async () => {
    const clock: Clock = { now: Date.now() };
    const here = location(clock);
    const account = await newAccount();
    const t0 = (await loginAccount(account)).refresh_token as string;
    const t1 = (await (await refreshAt(here, t0)).json<Record<string, any>>()).refresh_token as string;
    clock.now += GRACE_MS + 1000;

    const reused = await refreshAt(location(clock), t0);
    await expectInvalidGrant(reused);
    const familyId = (await storedRecord(t0))!.familyId;
    expect(await familyObject(familyId).state()).toMatchObject({ reason: "reused", revokedAt: clock.now });
    expect(await env.TOKENS.get(`refresh-family:${familyId}`, "json")).toMatchObject({
      reason: "reused",
      memberId: account.memberId,
    });
    await expectInvalidGrant(await refreshAt(here, t1));
  });

  it("a second location with a stale KV view cannot fork the family", async () => {
    const clock: Clock = { now: Date.now() };
    const t0 = (await loginAccount(await newAccount())).refresh_token as string;
    const familyId = (await storedRecord(t0))!.familyId;
    const keys = [`refresh:${await sha256Hex(t0)}`, `refresh-family:${familyId}`];
    const frozen = await freeze(keys); // t0 unused, family alive: what the far edge keeps serving
    const far = location(clock, { ...env, TOKENS: staleKv(frozen) });
    const near = location(clock);

    const t1 = (await (await refreshAt(near, t0)).json<Record<string, any>>()).refresh_token as string;
    const retry = await refreshAt(far, t0);
    expect(retry.status, "within the grace window: the one successor, not a second one").toBe(200);
    expect((await retry.json<Record<string, any>>()).refresh_token).toBe(t1);

    clock.now += GRACE_MS + 1000;
    await expectInvalidGrant(await refreshAt(far, t0));
    expect(await familyObject(familyId).state()).toMatchObject({ reason: "reused" });
    await expectInvalidGrant(await refreshAt(near, t1));
    const farStillThinksAlive = location(clock, { ...env, TOKENS: staleKv(await freeze([])) });
    await expectInvalidGrant(await refreshAt(farStillThinksAlive, t1));
    expect((await familyObject(familyId).state())!.tokens).toHaveLength(2);
  });

  it("a family revoked by logout stays revoked for a location whose KV still shows it alive", async () => {
    const clock: Clock = { now: Date.now() };
    const t0 = (await loginAccount(await newAccount())).refresh_token as string;
    const familyId = (await storedRecord(t0))!.familyId;
    const frozen = await freeze([`refresh-family:${familyId}`]);
    const near = location(clock);
    expect((await near.post("/authenticate/revoke", { refresh_token: t0 })).status).toBe(200);

    const far = location(clock, { ...env, TOKENS: staleKv(frozen) });
    await expectInvalidGrant(await refreshAt(far, t0));
    expect(await familyObject(familyId).state()).toMatchObject({ reason: "revoked" });
  });

  it("logout-everywhere ends every session at once for a location whose KV still has no revoke-all marker", async () => {
    const clock: Clock = { now: Date.now() };
    const account = await newAccount();
    const first = await loginAccount(account);
    const second = await loginAccount(account);
    const familyId = (await storedRecord(second.refresh_token))!.familyId;
    const frozen = await freeze([`refresh-member:${account.memberId}`]); // absent: what the far edge keeps serving
    const near = location(clock);
    const far = location(clock, { ...env, TOKENS: staleKv(frozen) });
    clock.now = Date.now(); // the sessions were started by the real clock
    expect(
      (await near.post("/authenticate/revoke", { all: true }, { Authorization: `Bearer ${first.access_token}` }))
        .status,
    ).toBe(200);
    expect(
      await env.DB.prepare("SELECT sessions_revoked_at AS at FROM members WHERE id = ?")
        .bind(account.memberId)
        .first<number>("at"),
    ).toBeGreaterThanOrEqual((await storedRecord(second.refresh_token))!.familyCreatedAt);

    await expectInvalidGrant(await refreshAt(far, second.refresh_token));
    expect(await familyObject(familyId).state()).toMatchObject({ reason: "member_signed_out" });
    await expectInvalidGrant(await refreshAt(far, first.refresh_token));
    const after = await loginAccount(account);
    expect((await refreshAt(far, after.refresh_token)).status, "a session started afterwards goes on").toBe(200);
  });
});

describe("the login back-off decided by one Durable Object per email", () => {
  async function freshMember(): Promise<string> {
    const email = `exact-${crypto.randomUUID().slice(0, 8)}@acme.example`;
    await env.DB.prepare(
      "INSERT INTO members (identifier, organisation_id, email, password_hash, role) VALUES (?, 1, ?, ?, 'builder')",
    )
      .bind(`x${crypto.randomUUID().slice(0, 7)}`, email, await hashPassword(SEED_PASSWORD, env.PASSWORD_PEPPER!))
      .run();
    return email;
  }

  it.each([
    ["a known email", freshMember],
    ["an unknown email", async () => `ghost-${crypto.randomUUID().slice(0, 8)}@acme.example`],
  ])(
    "is exact under concurrency from 20 locations (%s): LOGIN_FREE_ATTEMPTS password checks, then 429",
    async (_name, emailFor) => {
      const email = await emailFor();
      const clock: Clock = { now: Date.now() };
      const responses = await Promise.all(
        Array.from({ length: 20 }, () => location(clock).post("/authenticate", { email, password: "wrong-password" })),
      );
      const statuses = responses.map((response) => response.status).sort();
      expect(statuses).toEqual([...Array(FREE_ATTEMPTS).fill(401), ...Array(20 - FREE_ATTEMPTS).fill(429)]);
      expect(await backoffRecord(email)).toMatchObject({ failures: FREE_ATTEMPTS });
    },
  );

  it("a location with a stale KV view and a cold isolate cannot exceed it, and a locked account costs no PBKDF2", async () => {
    const email = await freshMember();
    const clock: Clock = { now: Date.now() };
    const near = location(clock);
    for (let i = 0; i < FREE_ATTEMPTS; i++) {
      expect((await near.post("/authenticate", { email, password: "wrong-password" })).status).toBe(401);
    }
    const far = location(clock, { ...env, TOKENS: staleKv(await freeze([`login-fail:${await sha256Hex(email)}`])) });
    const derive = vi.spyOn(crypto.subtle, "deriveBits");
    try {
      const locked = await far.post("/authenticate", { email, password: SEED_PASSWORD });
      expect(locked.status).toBe(429);
      expect(locked.headers.get("Retry-After")).toBe("1");
      expect(derive).not.toHaveBeenCalled();
    } finally {
      derive.mockRestore();
    }

    clock.now += 1100;
    expect((await far.post("/authenticate", { email, password: "wrong-password" })).status).toBe(401);
    const doubled = await near.post("/authenticate", { email, password: SEED_PASSWORD });
    expect(doubled.status).toBe(429);
    expect(doubled.headers.get("Retry-After")).toBe("2");
  });
});
