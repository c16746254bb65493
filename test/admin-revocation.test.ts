// Admin commands that end access: suspension, sign-out, password, deletion, a plan that leaves the API, an organisation
// suspended, and unlock, each through its signed admin route, revoking at once here and within 60 s elsewhere.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { throttleKey } from "../src/credentials/throttle";
import { adminRequest, auditRowsOf, bearer, fakeOrigin, postLogin, problem } from "./helpers";
import { backoffRecord, location, revocationPublished, seedBackoff, type Clock } from "./locations";
import { SEED_PASSWORD } from "../scripts/seed-data";
import { loginAccount, newAccount, postRefresh, type Account } from "./refresh-helpers";

afterEach(() => vi.restoreAllMocks());

async function expectStatus(response: Response, status: number, code?: string): Promise<void> {
  expect(response.status, await response.clone().text()).toBe(status);
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

/** The admin route `route` called at `here`, signed. */
async function admin(here: ReturnType<typeof location>, route: string, body: unknown): Promise<Response> {
  const path = `/authenticate/admin/${route}`;
  return here.request(path, await adminRequest(path, body));
}

/** The single audit row of an admin response, its detail parsed. */
async function auditedOnce(response: Response): Promise<Record<string, any>> {
  const rows = await auditRowsOf(response.headers.get("X-Request-Id")!);
  expect(rows).toHaveLength(1);
  return { ...rows[0], detail: JSON.parse(rows[0]!.detail!) };
}

const who = (account: Account) => ({ org: account.organisation, email: account.email });

/** Once the revocation of `memberId` is published, `far` refuses `token` within 60 s (here: 30 s later). */
async function refusedFarWithin60s(far: ReturnType<typeof location>, clock: Clock, memberId: number, token: string) {
  await revocationPublished(memberId);
  clock.now += 30_000;
  await expectStatus(await far.request("/grids", bearer(token)), 401, "invalid_token");
}

describe("admin commands that end access", () => {
  it("member:suspend: the earlier access token is refused at once here, within 60 s elsewhere, refreshes end; member:activate lets the member log in again", async () => {
    const { account, token, refresh, clock, near, far } = await sessionAtTwoLocations();

    const response = await admin(near, "member/suspend", who(account));
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      member: { id: account.memberId, status: "suspended" },
      from: "active",
    });
    expect(await auditedOnce(response)).toMatchObject({
      event: "member.suspend",
      member_id: account.memberId,
      organisation_id: account.organisationId,
      detail: { actor: "operator", organisation: account.organisation, from: "active" },
    });
    await expectStatus(await near.request("/grids", bearer(token)), 401, "invalid_token");
    expect((await postRefresh({ refresh_token: refresh })).status).toBe(400);
    await expectStatus(await postLogin({ email: account.email, password: SEED_PASSWORD }), 403, "account_suspended");
    await refusedFarWithin60s(far, clock, account.memberId, token);

    const activated = await admin(near, "member/activate", who(account));
    expect(await activated.json()).toMatchObject({ member: { status: "active" }, from: "suspended" });
    expect(await auditedOnce(activated)).toMatchObject({ event: "member.activate", member_id: account.memberId });
    expect((await postLogin({ email: account.email, password: SEED_PASSWORD })).status).toBe(200);
  });

  it("member:sign-out ends every session and access token of an active member", async () => {
    fakeOrigin();
    const account = await newAccount();
    const { access_token: token, refresh_token: refresh } = await loginAccount(account);
    const here = location({ now: Date.now() });
    const response = await admin(here, "member/sign-out", who(account));
    expect(response.status).toBe(200);
    expect(await auditedOnce(response)).toMatchObject({ event: "member.sign-out", member_id: account.memberId });
    await expectStatus(await here.request("/grids", bearer(token)), 401, "invalid_token");
    await expectStatus(await postRefresh({ refresh_token: refresh }), 400, "invalid_grant");
    expect((await postLogin({ email: account.email, password: SEED_PASSWORD })).status).toBe(200);
  });

  it("member:password: the new password logs in, the old one and every earlier token and session are refused", async () => {
    const { account, token, refresh, clock, near, far } = await sessionAtTwoLocations();

    const password = "a-brand-new-password";
    const response = await admin(near, "member/password", { ...who(account), password });
    expect(response.status).toBe(200);
    const row = await auditedOnce(response);
    expect(row).toMatchObject({ event: "member.password", member_id: account.memberId });
    expect(JSON.stringify(row)).not.toContain(password);
    await expectStatus(await near.request("/grids", bearer(token)), 401, "invalid_token");
    await expectStatus(await postRefresh({ refresh_token: refresh }), 400, "invalid_grant");
    await refusedFarWithin60s(far, clock, account.memberId, token);

    expect((await postLogin({ email: account.email, password: SEED_PASSWORD })).status).toBe(401);
    expect((await postLogin({ email: account.email, password })).status).toBe(200);
    await expectStatus(
      await admin(near, "member/password", { ...who(account), password: "short" }),
      400,
      "invalid_request",
    );
    expect((await postLogin({ email: account.email, password })).status).toBe(200);
  });

  it("member:delete: the deleted member's access tokens are refused here at once and within 60 s elsewhere; member:sign-out --member-id still works", async () => {
    const { account, token, refresh, clock, near, far } = await sessionAtTwoLocations();

    const response = await admin(near, "member/delete", who(account));
    expect(await response.json()).toMatchObject({ member: { id: account.memberId, email: account.email } });
    expect(await auditedOnce(response)).toMatchObject({ event: "member.delete", member_id: account.memberId });
    expect(await env.DB.prepare("SELECT id FROM members WHERE id = ?").bind(account.memberId).first()).toBeNull();
    await expectStatus(await near.request("/grids", bearer(token)), 401, "invalid_token");
    await expectStatus(await postRefresh({ refresh_token: refresh }), 400, "invalid_grant");
    await refusedFarWithin60s(far, clock, account.memberId, token);
    expect((await postLogin({ email: account.email, password: SEED_PASSWORD })).status).toBe(401);

    await expectStatus(await admin(near, "member/delete", who(account)), 404, "not_found");
    const byId = await admin(near, "member/sign-out", { member_id: account.memberId });
    expect(await byId.json()).toEqual({ member_id: account.memberId });
    expect(await auditedOnce(byId)).toMatchObject({
      event: "member.sign-out",
      member_id: account.memberId,
      organisation_id: null,
    });
  });

  it("org:plan revokes an organisation's tokens only when the new plan leaves the API plans, one org.plan event each", async () => {
    fakeOrigin();
    const stays = await newAccount();
    const leaves = await newAccount();
    const { access_token: staying } = await loginAccount(stays);
    const { access_token: leaving } = await loginAccount(leaves);
    const here = location({ now: Date.now() });
    const kept = await admin(here, "org/plan", { org: stays.organisation, plan: "enterprise" });
    expect(await kept.json()).toEqual({
      organisation: stays.organisation,
      from: "professional",
      to: "enterprise",
      revoked: false,
    });
    expect(await auditedOnce(kept)).toMatchObject({
      event: "org.plan",
      organisation_id: stays.organisationId,
      member_id: null,
      detail: {
        actor: "operator",
        organisation: stays.organisation,
        from: "professional",
        to: "enterprise",
        revoked: false,
      },
    });
    const ended = await admin(here, "org/plan", { org: leaves.organisation, plan: "free" });
    expect(await ended.json()).toMatchObject({ revoked: true });
    expect(await auditedOnce(ended)).toMatchObject({ event: "org.plan", detail: { to: "free", revoked: true } });
    expect((await here.request("/grids", bearer(staying))).status).toBe(200);
    await expectStatus(await here.request("/grids", bearer(leaving)), 401, "invalid_token");
  });

  it("org:suspend ends every member's tokens and logins; org:activate restores logins", async () => {
    fakeOrigin();
    const account = await newAccount();
    const { access_token: token, refresh_token: refresh } = await loginAccount(account);
    const here = location({ now: Date.now() });
    const suspended = await admin(here, "org/suspend", { org: account.organisation });
    expect(await suspended.json()).toEqual({ organisation: account.organisation, from: "active", to: "suspended" });
    expect(await auditedOnce(suspended)).toMatchObject({
      event: "org.suspend",
      organisation_id: account.organisationId,
    });
    await expectStatus(await here.request("/grids", bearer(token)), 401, "invalid_token");
    await expectStatus(await postRefresh({ refresh_token: refresh }), 400, "invalid_grant");
    await expectStatus(await postLogin({ email: account.email, password: SEED_PASSWORD }), 403);

    const activated = await admin(here, "org/activate", { org: account.organisation });
    expect(await auditedOnce(activated)).toMatchObject({ event: "org.activate", detail: { from: "suspended" } });
    expect((await postLogin({ email: account.email, password: SEED_PASSWORD })).status).toBe(200);
  });

  it("refuses unknown members and organisations (404) and bad input (400), changing nothing", async () => {
    const account = await newAccount();
    const here = location({ now: Date.now() });
    for (const route of ["member/suspend", "member/activate", "member/sign-out", "member/delete"]) {
      await expectStatus(
        await admin(here, route, { org: account.organisation, email: "nobody@x.example" }),
        404,
        "not_found",
      );
      await expectStatus(await admin(here, route, { org: "nobody-here", email: account.email }), 404, "not_found");
      await expectStatus(
        await admin(here, route, { org: account.organisation, email: "not an email" }),
        400,
        "invalid_request",
      );
      await expectStatus(await admin(here, route, { org: account.organisation }), 400, "invalid_request");
    }
    for (const bad of [{ member_id: 0 }, { member_id: "1e3" }, { member_id: 1, org: account.organisation }])
      await expectStatus(await admin(here, "member/sign-out", bad), 400, "invalid_request");
    expect((await postLogin({ email: account.email, password: SEED_PASSWORD })).status).toBe(200);
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
    const response = await admin(here, "member/unlock", { email: ` ${account.email.toUpperCase()} ` });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ unlocked: { failures: 12, wasLocked: true } });
    const row = await auditedOnce(response);
    expect(row).toMatchObject({ event: "member.unlock", outcome: "success", member_id: null });
    expect(JSON.stringify(row.detail)).not.toContain("@");
    expect(row.detail).toMatchObject({
      actor: "operator",
      failures: 12,
      wasLocked: true,
      account: await throttleKey(account.email),
    });
    expect(await backoffRecord(account.email)).toBeUndefined();
    expect((await postLogin({ email: account.email, password: SEED_PASSWORD })).status).toBe(200);
    await expectStatus(await postLogin({ email: other.email, password: SEED_PASSWORD }), 429, "rate_limited");

    const again = await admin(here, "member/unlock", { email: account.email });
    expect(await again.json()).toEqual({ unlocked: { failures: 0, wasLocked: false } });
    for (const bad of [
      {},
      { email: 1 },
      { email: "no-at-sign" },
      { email: "a@b@c" },
      { email: `${"x".repeat(320)}@b.example` },
    ])
      await expectStatus(await admin(here, "member/unlock", bad), 400, "invalid_request");
  });
});
