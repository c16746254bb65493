// Gateways built with fakes, driven through the HTTP surface: a clock (token expiry, the plan cache's 60 s bound), a failing D1 (the plan gate's 503).
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { bearer, fakeOrigin, fixedClaims, newOrganisation, problem, signWithJose } from "./helpers";
import { location, type Clock } from "./locations";

afterEach(() => vi.restoreAllMocks());

/** A location on its own clock, without a plan copy; `get` sends `token` as the bearer token. */
function appWithClock(bindings: typeof env = env) {
  const clock: Clock = { now: Date.now() };
  const at = location(clock, bindings, { locationCache: null });
  return { clock, get: (path: string, token: string) => at.request(path, bearer(token)) };
}

describe("a gateway with an injected clock", () => {
  it("refuses an access token once its exp plus CLOCK_SKEW has passed, without waiting", async () => {
    fakeOrigin();
    const { clock, get } = appWithClock();
    const start = clock.now;
    const token = await signWithJose(fixedClaims({ exp: Math.floor(start / 1000) + 600 }));
    expect((await get("/grids", token)).status).toBe(200);

    clock.now = start + 629_000;
    expect((await get("/grids", token)).status, "within the 30 s skew").toBe(200);

    clock.now = start + 631_000;
    const expired = await get("/grids", token);
    expect(expired.status).toBe(401);
    expect((await problem(expired)).detail).toBe("token expired");
  });

  it("serves cached plan state for less than 60 s and re-reads D1 after that", async () => {
    fakeOrigin();
    const { clock, get } = appWithClock();
    const start = clock.now;
    const organisation = await newOrganisation("professional", "c");
    const token = await signWithJose(
      fixedClaims({ organisationEntityIdentifier: organisation, exp: Math.floor(start / 1000) + 3600 }),
    );
    expect((await get("/grids", token)).status).toBe(200);
    await env.DB.prepare("UPDATE organisations SET plan = 'free' WHERE identifier = ?").bind(organisation).run();

    clock.now = start + 29_000;
    expect((await get("/grids", token)).status, "the cached entry is 29 s old").toBe(200);

    clock.now = start + 61_000;
    expect((await get("/grids", token)).status, "61 s after the D1 read").toBe(403);
  });
});

describe("a gateway whose D1 fails", () => {
  it("answers 503 temporarily_unavailable for an organisation it never read, and logs the failure once", async () => {
    fakeOrigin();
    const warnings = vi.spyOn(console, "warn").mockImplementation(() => {});
    const failing = {
      prepare: () => {
        throw new Error("D1 is down");
      },
    } as unknown as D1Database;
    const { get } = appWithClock({ ...env, DB: failing });
    const token = await signWithJose(fixedClaims());
    for (let attempt = 0; attempt < 3; attempt++) {
      const response = await get("/grids", token);
      expect(response.status).toBe(503);
      expect(response.headers.get("Retry-After")).toBe("5");
      expect((await problem(response)).code).toBe("temporarily_unavailable");
    }
    const lines = warnings.mock.calls.map(([line]) => JSON.parse(String(line)));
    expect(lines.filter((line) => line.event === "plan_store_unavailable")).toHaveLength(1);
  });
});
