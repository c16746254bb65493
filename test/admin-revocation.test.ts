// Admin commands reach the gateway's objects through the signed admin routes: suspension, sign-out, password, deletion, a plan that leaves the API, unlock.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import * as sql from "../scripts/admin/sql";
import { hashPassword } from "../src/credentials/password";
import { throttleKey } from "../src/credentials/throttle";
import { adminRequest, auditRowsOf, fakeOrigin, postLogin, problem } from "./helpers";
import { backoffRecord, bearer, location, revocationPublished, seedBackoff, type Clock } from "./locations";
import { SEED_PASSWORD } from "../scripts/seed-data";
import { loginAccount, newAccount, postRefresh } from "./refresh-helpers";

afterEach(() => vi.restoreAllMocks());

async function expectStatus(response: Response, status: number, code?: string): Promise<void> {
  expect(response.status).toBe(status);
  if (code) expect((await problem(response)).code).toBe(code);
}

/**
 * A new account logged in, and two gateway locations on one clock: `near` gets the admin request, `far` learns
 * of it through the published record; the access token already passed at `far` (its caches are warm).
 */
async function sessionAtTwoLocations() {
  fakeOrigin();
  const account = await newAccount();
  const { access_token: token, refresh_token: refresh } = await loginAccount(account);
  const clock: Clock = { now: Date.now() };
  const near = location(clock);
  const far = location(clock);
  expect((await far.request("/grids", bearer(token))).status).toBe(200);
  return { account, token, refresh, clock, near, far };
}

/** Once the revocation of `memberId` is published, `far` refuses `token` within 60 s (here: 30 s later). */
async function refusedFarWithin60s(far: ReturnType<typeof location>, clock: Clock, memberId: number, token: string) {
  await revocationPublished(memberId);
  clock.now += 30_000;
  await expectStatus(await far.request("/grids", bearer(token)), 401, "invalid_token");
}

describe("admin revocations", () => {
  it("member:suspend: the earlier access token is refused at once here, within 60 s elsewhere, and refreshes end", async () => {
    const { account, token, refresh, clock, near, far } = await sessionAtTwoLocations();

    await env.DB.prepare(sql.setMemberStatusSql(account.organisation, account.email, "suspended")).run();
    const response = await near.request(
      "/authenticate/admin/revocations",
      await adminRequest("/authenticate/admin/revocations", { members: [account.memberId] }),
    );
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ revoked: { members: [account.memberId], organisations: [] } });
    await expectStatus(await near.request("/grids", bearer(token)), 401, "invalid_token");
    expect((await postRefresh({ refresh_token: refresh })).status).toBe(400);

    await refusedFarWithin60s(far, clock, account.memberId, token);
  });

  it("member:sign-out ends every session and access token of an active member", async () => {
    fakeOrigin();
    const account = await newAccount();
    const { access_token: token, refresh_token: refresh } = await loginAccount(account);
    const here = location({ now: Date.now() });
    expect(
      (
        await here.request(
          "/authenticate/admin/revocations",
          await adminRequest("/authenticate/admin/revocations", { members: [account.memberId] }),
        )
      ).status,
    ).toBe(200);
    await expectStatus(await here.request("/grids", bearer(token)), 401, "invalid_token");
    await expectStatus(await postRefresh({ refresh_token: refresh }), 400, "invalid_grant");
  });

  it("member:password: the new password logs in, the old one and every earlier token and session are refused", async () => {
    const { account, token, refresh, clock, near, far } = await sessionAtTwoLocations();

    const password = "a-brand-new-password";
    await env.DB.prepare(
      sql.setPasswordSql(account.organisation, account.email, await hashPassword(password, env.PASSWORD_PEPPER!)),
    ).run();
    // D1 alone leaves the access token working: the admin route revokes it.
    expect((await far.request("/grids", bearer(token))).status).toBe(200);
    const response = await near.request(
      "/authenticate/admin/revocations",
      await adminRequest("/authenticate/admin/revocations", { members: [account.memberId] }),
    );
    expect(response.status).toBe(200);
    await expectStatus(await near.request("/grids", bearer(token)), 401, "invalid_token");
    await expectStatus(await postRefresh({ refresh_token: refresh }), 400, "invalid_grant");
    await refusedFarWithin60s(far, clock, account.memberId, token);

    expect((await postLogin({ email: account.email, password: SEED_PASSWORD })).status).toBe(401);
    expect((await postLogin({ email: account.email, password })).status).toBe(200);
  });

  it("member:delete: the deleted member's access tokens are refused here at once and within 60 s elsewhere", async () => {
    const { account, token, refresh, clock, near, far } = await sessionAtTwoLocations();

    await env.DB.prepare(sql.deleteMemberSql(account.organisation, account.email)).run();
    expect(await env.DB.prepare(sql.memberQuery(account.organisation, account.email)).first()).toBeNull();
    const response = await near.request(
      "/authenticate/admin/revocations",
      await adminRequest("/authenticate/admin/revocations", { members: [account.memberId] }),
    );
    expect(await response.json()).toEqual({ revoked: { members: [account.memberId], organisations: [] } });
    await expectStatus(await near.request("/grids", bearer(token)), 401, "invalid_token");
    await expectStatus(await postRefresh({ refresh_token: refresh }), 400, "invalid_grant");
    await refusedFarWithin60s(far, clock, account.memberId, token);
    expect((await postLogin({ email: account.email, password: SEED_PASSWORD })).status).toBe(401);
  });

  it("org:plan revokes an organisation's tokens only when the new plan leaves the API plans", async () => {
    fakeOrigin();
    const stays = await newAccount();
    const leaves = await newAccount();
    const { access_token: staying } = await loginAccount(stays);
    const { access_token: leaving } = await loginAccount(leaves);
    await env.DB.prepare(sql.changePlanSql(stays.organisation, "enterprise")).run();
    await env.DB.prepare(sql.changePlanSql(leaves.organisation, "free")).run();
    const here = location({ now: Date.now() });
    const response = await here.request(
      "/authenticate/admin/revocations",
      await adminRequest("/authenticate/admin/revocations", {
        organisations: [stays.organisation, leaves.organisation],
      }),
    );
    expect(await response.json()).toEqual({ revoked: { members: [], organisations: [leaves.organisation] } });
    expect((await here.request("/grids", bearer(staying))).status).toBe(200);
    await expectStatus(await here.request("/grids", bearer(leaving)), 401, "invalid_token");
  });

  it("refuses unsigned, wrongly signed, stale and malformed requests, and is absent without ADMIN_SECRET", async () => {
    const here = location({ now: Date.now() });
    const body = { members: [1] };
    const path = "/authenticate/admin/revocations";
    const unsigned = await here.request(path, { method: "POST", body: JSON.stringify(body) });
    await expectStatus(unsigned, 401, "invalid_token");
    await expectStatus(
      await here.request(path, await adminRequest(path, body, undefined, "x".repeat(40))),
      401,
      "invalid_token",
    );
    await expectStatus(
      await here.request(path, await adminRequest(path, body, Math.floor(Date.now() / 1000) - 120)),
      401,
    );
    const tampered = await adminRequest(path, body);
    await expectStatus(await here.request(path, { ...tampered, body: JSON.stringify({ members: [2] }) }), 401);
    const signedForUnlock = await adminRequest("/authenticate/admin/unlock", body);
    await expectStatus(await here.request(path, signedForUnlock), 401, "invalid_token");
    for (const bad of [{}, { members: ["1"] }, { members: [0] }, { organisations: ["a b"] }]) {
      await expectStatus(await here.request(path, await adminRequest(path, bad)), 400, "invalid_request");
    }
    await expectStatus(await here.request(path, { method: "GET" }), 405, "method_not_allowed");

    const oversized = await adminRequest(path, { members: [1], padding: "x".repeat(17 * 1024) });
    await expectStatus(await here.request(path, oversized), 413, "payload_too_large");
    const endless = new ReadableStream<Uint8Array>({
      pull: (controller) => controller.enqueue(new Uint8Array(4096)),
    });
    await expectStatus(await here.request(path, { ...tampered, body: endless }), 413, "payload_too_large");

    const disabled = location({ now: Date.now() }, { ...env, ADMIN_SECRET: undefined });
    await expectStatus(await disabled.request(path, await adminRequest(path, body)), 404, "not_found");
  });

  it("member:unlock: a locked account logs in again at once, and only the email named is unlocked", async () => {
    const account = await newAccount();
    const other = await newAccount();
    const now = Date.now();
    const locked = { failures: 12, lockedUntil: now + 900_000, expiresAt: now + 1_800_000 };
    await seedBackoff(account.email, locked);
    await seedBackoff(other.email, locked);
    const refused = await postLogin({ email: account.email, password: SEED_PASSWORD });
    await expectStatus(refused, 429, "rate_limited");

    const here = location({ now: Date.now() });
    const response = await here.request(
      "/authenticate/admin/unlock",
      await adminRequest("/authenticate/admin/unlock", { email: ` ${account.email.toUpperCase()} ` }),
    );
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ unlocked: { failures: 12, wasLocked: true } });
    const [row] = await auditRowsOf(response.headers.get("X-Request-Id")!);
    expect(row).toMatchObject({ event: "unlock.admin", outcome: "success" });
    expect(row!.detail).not.toContain("@");
    expect(JSON.parse(row!.detail!)).toMatchObject({
      failures: 12,
      wasLocked: true,
      account: await throttleKey(account.email),
    });
    expect(await backoffRecord(account.email)).toBeUndefined();
    expect((await postLogin({ email: account.email, password: SEED_PASSWORD })).status).toBe(200);
    await expectStatus(await postLogin({ email: other.email, password: SEED_PASSWORD }), 429, "rate_limited");

    const again = await here.request(
      "/authenticate/admin/unlock",
      await adminRequest("/authenticate/admin/unlock", { email: account.email }),
    );
    expect(await again.json()).toEqual({ unlocked: { failures: 0, wasLocked: false } });
  });

  it("member:unlock refuses unsigned and malformed requests", async () => {
    const here = location({ now: Date.now() });
    const path = "/authenticate/admin/unlock";
    await expectStatus(
      await here.request(path, { method: "POST", body: JSON.stringify({ email: "a@b.example" }) }),
      401,
      "invalid_token",
    );
    for (const bad of [
      {},
      { email: 1 },
      { email: "no-at-sign" },
      { email: "a@b@c" },
      { email: `${"x".repeat(250)}@b.example` },
    ]) {
      await expectStatus(await here.request(path, await adminRequest(path, bad)), 400, "invalid_request");
    }
    await expectStatus(await here.request(path, { method: "GET" }), 405, "method_not_allowed");
    const disabled = location({ now: Date.now() }, { ...env, ADMIN_SECRET: undefined });
    await expectStatus(
      await disabled.request(path, await adminRequest(path, { email: "a@b.example" })),
      404,
      "not_found",
    );
  });
});
