// The verify path does no storage I/O for fixed-secret tokens, and plan state is at most 60 s stale.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { fakeOrigin, fixedClaims, gateway, newOrganisation, signWithJose, spyOnD1Statements } from "./helpers";

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

function spyOnStorage() {
  return [spyOnD1Statements(), vi.spyOn(env.DB, "batch"), vi.spyOn(env.TOKENS, "get"), vi.spyOn(env.TOKENS, "put")];
}

describe("storage I/O on the request path", () => {
  it("touches neither D1 nor KV for a refused token, however it fails", async () => {
    fakeOrigin();
    const spies = spyOnStorage();
    const forged = await signWithJose(fixedClaims(), "a-forged-secret-of-sufficient-length-000000");
    const expired = await signWithJose(fixedClaims({ exp: 1 }));
    for (const authorization of [undefined, "Basic eDp5", `Bearer ${forged}`, `Bearer ${expired}`, "Bearer a.b.c"]) {
      const response = await gateway("/grids", { headers: authorization ? { Authorization: authorization } : {} });
      expect(response.status).toBe(401);
    }
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  });

  it("needs no D1 or KV for a fixed-secret token once the plan is cached", async () => {
    fakeOrigin();
    const organisation = await newOrganisation("enterprise", "h");
    const token = await signWithJose(fixedClaims({ organisationEntityIdentifier: organisation }));
    const spies = spyOnStorage();
    expect((await gateway("/grids", { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
    expect(spies[0], "the first request loads the plan from D1").toHaveBeenCalledTimes(1);
    for (const spy of spies) spy.mockClear();
    for (let i = 0; i < 3; i++)
      expect((await gateway("/grids", { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  });
});

describe("plan cache", () => {
  it("notices a downgrade within 60 s, never serving older state", async () => {
    fakeOrigin();
    vi.useFakeTimers({ toFake: ["Date"] });
    const organisation = await newOrganisation("professional", "h");
    const token = await signWithJose(
      fixedClaims({ organisationEntityIdentifier: organisation, exp: Math.floor(Date.now() / 1000) + 3600 }),
    );
    const get = () => gateway("/grids", { headers: { Authorization: `Bearer ${token}` } });

    expect((await get()).status).toBe(200);
    await env.DB.prepare("UPDATE organisations SET plan = 'free' WHERE identifier = ?").bind(organisation).run();
    expect((await get()).status).toBe(200);

    vi.advanceTimersByTime(61_000);
    expect((await get()).status).toBe(403);

    await env.DB.prepare("UPDATE organisations SET plan = 'enterprise' WHERE identifier = ?").bind(organisation).run();
    vi.advanceTimersByTime(61_000);
    expect((await get()).status).toBe(200);
  });
});
