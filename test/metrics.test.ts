// Metrics through the HTTP surface: one Analytics Engine data point per request (a fake dataset), with route kind,
// status, problem code, organisation, secret type and duration.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SEED_PASSWORD } from "../scripts/seed-data";
import { createWorker } from "../src/worker";
import type { Bindings } from "../src/config";
import { createServices } from "../src/services";
import { bearer, fakeOrigin, fixedClaims, GATEWAY, randomIp, signWithJose } from "./helpers";

afterEach(() => vi.restoreAllMocks());

/** An app over a fake `METRICS` dataset and a clock the test moves; `send` returns the response and its data points. */
function metered(extra: Partial<Bindings> = {}) {
  const points: AnalyticsEngineDataPoint[] = [];
  const dataset = { writeDataPoint: (point?: AnalyticsEngineDataPoint) => void points.push(point!) };
  const bindings: Bindings = { ...env, METRICS: dataset, ...extra };
  const clock = { now: Date.now() };
  const gatewayObject = createServices(bindings, { now: () => clock.now });
  const app = createWorker({ servicesFor: () => gatewayObject });
  const send = async (path: string, init?: RequestInit) => {
    const before = points.length;
    const ctx = createExecutionContext();
    const response = await app.fetch(new Request(GATEWAY + path, init), bindings, ctx);
    await waitOnExecutionContext(ctx);
    return { response, written: points.slice(before) };
  };
  return { send, clock };
}

describe("metrics", () => {
  it("writes one data point for a proxied request: organisation, secret type, status, duration", async () => {
    const { send, clock } = metered();
    fakeOrigin(() => {
      clock.now += 25;
      return Response.json({ ok: true });
    });
    const { response, written } = await send("/grids", bearer(await signWithJose(fixedClaims())));
    expect(response.status).toBe(200);
    expect(written).toEqual([{ indexes: ["m7l9hw"], blobs: ["proxied", "", "m7l9hw", "fixed"], doubles: [200, 25] }]);
  });

  it("records refusals with their problem code, and what is known of the token", async () => {
    const { send } = metered();
    fakeOrigin();
    const missing = await send("/grids");
    expect(missing.written).toEqual([
      { indexes: [""], blobs: ["proxied", "missing_token", "", ""], doubles: [401, 0] },
    ]);
    const free = await signWithJose(fixedClaims({ organisationEntityIdentifier: "f4r5t6" }));
    const refused = await send("/grids", bearer(free));
    expect(refused.written).toEqual([
      { indexes: ["f4r5t6"], blobs: ["proxied", "plan_not_eligible", "f4r5t6", "fixed"], doubles: [403, 0] },
    ]);
  });

  it("records a 429 of the organisation's limit", async () => {
    const refuse = { limit: async () => ({ success: false }) } as RateLimit;
    const { send } = metered({ API_LIMIT_PROFESSIONAL: refuse });
    fakeOrigin();
    const { response, written } = await send("/grids", bearer(await signWithJose(fixedClaims())));
    expect(response.status).toBe(429);
    expect(written).toEqual([
      { indexes: ["m7l9hw"], blobs: ["proxied", "rate_limited", "m7l9hw", "fixed"], doubles: [429, 0] },
    ]);
  });

  it("names the route kind of every gateway route", async () => {
    const { send } = metered();
    const json = (body: unknown): RequestInit => ({
      method: "POST",
      headers: { "Content-Type": "application/json", "CF-Connecting-IP": randomIp() },
      body: JSON.stringify(body),
    });
    const cases: [string, RequestInit | undefined, string, number, string][] = [
      ["/authenticate", json({ email: "architect@acme.example", password: SEED_PASSWORD }), "login", 200, ""],
      ["/authenticate", undefined, "login", 405, "method_not_allowed"],
      ["/authenticate/refresh", json({ refresh_token: "nope" }), "refresh", 400, "invalid_grant"],
      ["/authenticate/revoke", json({ refresh_token: "nope" }), "revoke", 200, ""],
      ["/authenticate/secrets", undefined, "secrets", 401, "missing_token"],
      ["/authenticate/admin/audit", undefined, "admin", 405, "method_not_allowed"],
      ["/authenticate/nothing-here", undefined, "other", 404, "not_found"],
      ["/health", undefined, "other", 200, ""],
      ["/.well-known/jwks.json", undefined, "other", 200, ""],
    ];
    for (const [path, init, route, status, code] of cases) {
      const { response, written } = await send(path, init);
      expect(response.status, path).toBe(status);
      expect(written, path).toHaveLength(1);
      expect(written[0]!.blobs!.slice(0, 2), path).toEqual([route, code]);
      expect(written[0]!.doubles![0], path).toBe(status);
    }
  });

  it("is a no-op without the binding, and a failing dataset never fails a request", async () => {
    fakeOrigin();
    const token = await signWithJose(fixedClaims());
    expect((await metered({ METRICS: undefined }).send("/grids", bearer(token))).response.status).toBe(200);
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const broken = {
      writeDataPoint: () => {
        throw new Error("dataset unavailable");
      },
    };
    const { send } = metered({ METRICS: broken });
    expect((await send("/grids", bearer(token))).response.status).toBe(200);
    expect((await send("/grids", bearer(token))).response.status).toBe(200);
    const lines = errors.mock.calls.map(([line]) => JSON.parse(String(line)));
    expect(lines.filter((line) => line.event === "metrics_write_failed")).toHaveLength(1);
  });
});
