// Refresh re-reads the member and organisation: suspension, deletion, password change and downgrade end the session.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SEED_PASSWORD } from "../scripts/seed-data";
import { adminCall, problem } from "./helpers";
import { loginAccount, newAccount, postRefresh, refreshOk, storedRecord } from "./refresh-helpers";

afterEach(() => {
  vi.useRealTimers();
});

async function expectRefused(token: string, status: number, code: string): Promise<void> {
  const response = await postRefresh({ refresh_token: token });
  expect(response.status).toBe(status);
  expect((await problem(response)).code).toBe(code);
}

async function familyRevocation(token: string): Promise<unknown> {
  return env.TOKENS.get(`refresh-family:${(await storedRecord(token))!.familyId}`, "json");
}

describe("refresh re-reads the member and organisation", () => {
  it("refresh after the organisation was downgraded: 403 plan_not_eligible, and the session stays ended after an upgrade", async () => {
    const account = await newAccount();
    const token = (await loginAccount(account)).refresh_token as string;
    await env.DB.prepare("UPDATE organisations SET plan = 'free' WHERE id = ?").bind(account.organisationId).run();
    await expectRefused(token, 403, "plan_not_eligible");
    expect((await storedRecord(token))!.usedAt).toBeUndefined();
    expect(await familyRevocation(token)).toMatchObject({ reason: "plan_not_eligible", memberId: account.memberId });

    await env.DB.prepare("UPDATE organisations SET plan = 'enterprise' WHERE id = ?")
      .bind(account.organisationId)
      .run();
    await expectRefused(token, 400, "invalid_grant");
    expect((await refreshOk((await loginAccount(account)).refresh_token)).scope).toBe("builder");
  });

  it("a suspended member gets 403 account_suspended", async () => {
    const account = await newAccount();
    const token = (await loginAccount(account)).refresh_token as string;
    await env.DB.prepare("UPDATE members SET status = 'suspended' WHERE id = ?").bind(account.memberId).run();
    await expectRefused(token, 403, "account_suspended");
    expect(await familyRevocation(token)).toMatchObject({ reason: "suspended" });
  });

  it("a suspended organisation gets 403 account_suspended", async () => {
    const account = await newAccount();
    const token = (await loginAccount(account)).refresh_token as string;
    await env.DB.prepare("UPDATE organisations SET status = 'suspended' WHERE id = ?")
      .bind(account.organisationId)
      .run();
    await expectRefused(token, 403, "account_suspended");
  });

  it("a deleted member gets 400 invalid_grant", async () => {
    const account = await newAccount();
    const token = (await loginAccount(account)).refresh_token as string;
    await env.DB.prepare("DELETE FROM members WHERE id = ?").bind(account.memberId).run();
    await expectRefused(token, 400, "invalid_grant");
    expect(await familyRevocation(token)).toMatchObject({ reason: "member_deleted" });
  });

  it("a password change ends sessions started before it, not those started after it", async () => {
    const account = await newAccount();
    const before = (await loginAccount(account)).refresh_token as string;
    const changed = await adminCall("member/password", {
      org: account.organisation,
      email: account.email,
      password: SEED_PASSWORD,
    });
    expect(changed.status).toBe(200);
    const after = (await loginAccount(account)).refresh_token as string;

    await expectRefused(before, 400, "invalid_grant");
    // member:password is a revoke-all: KV's member marker refuses the session before D1 is read.
    expect(await env.TOKENS.get(`refresh-member:${account.memberId}`, "json")).toEqual({
      notBefore: expect.any(Number),
    });
    expect((await refreshOk(after)).refresh_token).toMatch(/^ggr_/);
  });

  it("a role change shows in the scope of the next refresh", async () => {
    const account = await newAccount();
    const token = (await loginAccount(account)).refresh_token as string;
    await env.DB.prepare("UPDATE members SET role = 'user', extra_scopes = 'deleteGrids' WHERE id = ?")
      .bind(account.memberId)
      .run();
    expect((await refreshOk(token)).scope).toBe("user deleteGrids");
  });
});
