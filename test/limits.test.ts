// Per-organisation limits on the proxied API through the HTTP surface: 429 past the limit, other organisations
// unaffected, fixed and dynamic tokens sharing one budget, unbound limits disabled with one log line.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createWorker } from "../src/worker";
import type { Bindings } from "../src/config";
import { createServices } from "../src/services";
import {
  GATEWAY,
  fakeOrigin,
  fixedClaims,
  gateway,
  inOneRateWindow,
  newArchitectOrganisation,
  now,
  problem,
  signWithJose,
} from "./helpers";

afterEach(() => vi.restoreAllMocks());

/** `API_LIMIT_TEST` allows 3 requests a minute (vitest.config.ts). */
const LIMIT = 3;

/** An app whose one gateway uses `bindings`; by default professional is limited by the 3-a-minute test binding. */
function appWith(
  bindings: Bindings = {
    ...env,
    API_LIMIT_PROFESSIONAL: env.API_LIMIT_TEST,
    API_RATE_LIMITS: "professional=3,enterprise=6000",
  },
) {
  const gatewayObject = createServices(bindings);
  const app = createWorker({ servicesFor: () => gatewayObject });
  return async (token: string, path = "/grids", method = "GET"): Promise<Response> => {
    const ctx = createExecutionContext();
    const response = await app.fetch(
      new Request(GATEWAY + path, { method, headers: { Authorization: `Bearer ${token}` } }),
      bindings,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    return response;
  };
}

describe("the per-organisation API limit", () => {
  it("answers 429 rate_limited with Retry-After and RateLimit headers once the limit is used up", async () => {
    await inOneRateWindow(async () => {
      const seen = fakeOrigin();
      const get = appWith();
      const org = await newArchitectOrganisation("professional", "l");
      for (let i = 0; i < LIMIT; i++) {
        const ok = await get(org.token);
        expect(ok.status).toBe(200);
        expect(ok.headers.get("RateLimit-Policy"), "the origin's answer passes through unchanged").toBeNull();
      }
      const refused = await get(org.token);
      expect(refused.status).toBe(429);
      expect(refused.headers.get("Retry-After")).toBe("60");
      expect(refused.headers.get("RateLimit-Policy")).toBe('"organisation";q=3;w=60');
      expect(refused.headers.get("RateLimit")).toBe('"organisation";r=0;t=60');
      expect(refused.headers.get("Cache-Control")).toBe("no-store");
      const body = await problem(refused);
      expect(body).toMatchObject({
        type: "urn:gridgate:problem:rate_limited",
        code: "rate_limited",
        title: "Too many requests",
        status: 429,
      });
      expect(body.detail).toContain("3 requests a minute");
      expect(seen, "the refused request never reached the origin").toHaveLength(LIMIT);
    });
  });

  it("counts before the scope check: a request refused for its scope uses the budget too", async () => {
    await inOneRateWindow(async () => {
      fakeOrigin();
      const get = appWith();
      const org = await newArchitectOrganisation("professional", "l");
      const viewer = await signWithJose(
        fixedClaims({
          organisationEntityIdentifier: org.identifier,
          memberEntityIdentifier: org.member,
          scope: "user",
        }),
      );
      for (let i = 0; i < LIMIT; i++) {
        const forbidden = await get(viewer, "/grids/1", "DELETE");
        expect(forbidden.status).toBe(403);
      }
      expect((await get(org.token)).status).toBe(429);
    });
  });

  it("leaves another organisation unaffected", async () => {
    await inOneRateWindow(async () => {
      fakeOrigin();
      const get = appWith();
      const busy = await newArchitectOrganisation("professional", "l");
      const quiet = await newArchitectOrganisation("professional", "l");
      for (let i = 0; i < LIMIT; i++) expect((await get(busy.token)).status).toBe(200);
      expect((await get(busy.token)).status).toBe(429);
      expect((await get(quiet.token)).status).toBe(200);
    });
  });

  it("is one budget for the organisation's fixed-secret and dynamic-secret tokens", async () => {
    await inOneRateWindow(async () => {
      const seen = fakeOrigin();
      const get = appWith();
      const org = await newArchitectOrganisation("professional", "l");
      const created = await gateway("/authenticate/secrets", {
        method: "POST",
        headers: { Authorization: `Bearer ${org.token}` },
      });
      expect(created.status, await created.clone().text()).toBe(201);
      const { kid, secret } = await created.json<{ kid: string; secret: string }>();
      const dynamic = await signWithJose(
        {
          iat: now(),
          memberEntityIdentifier: org.member,
          organisationEntityIdentifier: org.identifier,
          scope: "organisation",
          secretType: "dynamic",
        },
        secret,
        { kid },
      );
      expect((await get(org.token)).status).toBe(200);
      expect((await get(dynamic)).status).toBe(200);
      expect((await get(org.token)).status).toBe(200);
      expect((await get(dynamic)).status, "the fourth request of the organisation, whatever its token").toBe(429);
      expect((await get(org.token)).status).toBe(429);
      expect(seen.map((request) => request.headers["x-auth-secret-type"])).toEqual(["fixed", "dynamic", "fixed"]);
    });
  });

  it("is disabled for a plan whose binding is unbound, with one log line per isolate and no error", async () => {
    fakeOrigin();
    const warnings = vi.spyOn(console, "warn").mockImplementation(() => {});
    const get = appWith({ ...env, API_LIMIT_ENTERPRISE: undefined });
    const org = await newArchitectOrganisation("enterprise", "l");
    for (let i = 0; i < LIMIT + 2; i++) expect((await get(org.token)).status).toBe(200);
    const lines = warnings.mock.calls.map(([line]) => JSON.parse(String(line)));
    expect(lines.filter((line) => line.event === "api_limit_disabled")).toEqual([
      expect.objectContaining({ level: "warn", plan: "enterprise", binding: "API_LIMIT_ENTERPRISE" }),
    ]);
  });

  it("applies the production defaults: professional 600, enterprise 6,000 a minute", async () => {
    fakeOrigin();
    const professional = await newArchitectOrganisation("professional", "l");
    const enterprise = await newArchitectOrganisation("enterprise", "l");
    // Stand-ins that refuse at once, to read the advertised policy of each plan with the real limits configured.
    const refuse = { limit: async () => ({ success: false }) } as RateLimit;
    const get = appWith({ ...env, API_LIMIT_PROFESSIONAL: refuse, API_LIMIT_ENTERPRISE: refuse });
    expect((await get(professional.token)).headers.get("RateLimit-Policy")).toBe('"organisation";q=600;w=60');
    expect((await get(enterprise.token)).headers.get("RateLimit-Policy")).toBe('"organisation";q=6000;w=60');
    const real = appWith(env);
    expect((await real(professional.token)).status, "the real 600-a-minute binding").toBe(200);
  });

  it("states in API_RATE_LIMITS exactly the limits wrangler.toml's API_LIMIT_* bindings enforce", () => {
    const toml = env.WRANGLER_TOML;
    const bindings = [
      ...toml.matchAll(/\[\[ratelimits\]\]\s*name = "API_LIMIT_([A-Z_]+)"[^[]*?limit = (\d+), period = (\d+)/g),
    ].map(([, plan, limit, period]) => [plan!.toLowerCase(), Number(limit), Number(period)]);
    expect(bindings).toEqual([
      ["professional", 600, 60],
      ["enterprise", 6000, 60],
    ]);
    const stated = /^API_RATE_LIMITS = "([^"]*)"/m.exec(toml)?.[1];
    expect(stated).toBe(bindings.map(([plan, limit]) => `${plan}=${limit}`).join(","));
    expect(env.API_RATE_LIMITS).toBe(stated);
  });
});
