// Plain API calls skip Hono's router: which requests may, and that they are answered exactly as through the router.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createApp } from "../src/app";
import type { Bindings } from "../src/config";
import { createGateway } from "../src/gateway";
import { plainProxiedCalls } from "../src/proxy/chain";
import { GATEWAY, fakeOrigin, fixedClaims, signWithJose } from "./helpers";

afterEach(() => vi.restoreAllMocks());

describe("which requests skip the router", () => {
  const routes = createApp().routes.map((route) => route.path);
  const bypassesRouter = plainProxiedCalls(routes);

  it("never one to a gateway route: every registered route path takes the router", () => {
    const gatewayRoutes = routes.filter((path) => path !== "*" && path !== "/*");
    expect(gatewayRoutes).toContain("/authenticate");
    for (const path of gatewayRoutes) {
      const concrete = path.replace(/:[^/]+/g, "x").replace(/\*/g, "y");
      expect(bypassesRouter(new Request(GATEWAY + concrete)), concrete).toBe(false);
    }
    const withParameter = plainProxiedCalls([...routes, "/:tenant/status"]);
    expect(withParameter(new Request(`${GATEWAY}/grids/1`)), "a route that may match any path").toBe(false);
  });

  it("only plain API calls: no gateway route name anywhere in the path, no %, no Origin, not HEAD", () => {
    const skips = (path: string, init?: RequestInit) => bypassesRouter(new Request(GATEWAY + path, init));
    expect(skips("/grids/1")).toBe(true);
    expect(skips("/grids?name=roof", { method: "POST", body: "{}" })).toBe(true);
    expect(skips("/")).toBe(true);
    for (const path of [
      "/authenticate",
      "/authenticate/refresh",
      "/Authenticate",
      "/AUTHENTICATE/secrets",
      "/authenticatex",
      "/grids/authenticate",
      "/%61uthenticate",
      "/grids/%31",
      "/health",
      "/health/",
      "/HEALTH",
      "/openapi.json",
      "/OpenAPI.json",
    ])
      expect(skips(path), path).toBe(false);
    expect(skips("/grids/1", { method: "HEAD" })).toBe(false);
    expect(skips("/grids/1", { headers: { Origin: "https://app.example.com" } })).toBe(false);
  });
});

/** An app over a fake `METRICS` dataset and a fixed clock; `routerOnly` sends every request through Hono. */
function app(routerOnly: boolean) {
  const points: AnalyticsEngineDataPoint[] = [];
  const bindings: Bindings = { ...env, METRICS: { writeDataPoint: (point) => void points.push(point!) } };
  const gatewayObject = createGateway(bindings, { now: () => 1_800_000_000_000 });
  const served = createApp({ gatewayFor: () => gatewayObject, routerOnly });
  return async (path: string, init: RequestInit) => {
    const seen = fakeOrigin((request) =>
      request.url.endsWith("/fails") ? Promise.reject(new Error("connection refused")) : Response.json({ ok: true }),
    );
    const ctx = createExecutionContext();
    const response = await served.fetch(new Request(GATEWAY + path, init), bindings, ctx);
    await waitOnExecutionContext(ctx);
    const requestId = response.headers.get("X-Request-Id");
    const headers = Object.fromEntries([...response.headers].filter(([name]) => name !== "x-request-id"));
    const body = (await response.text()).replaceAll(requestId ?? "-", "<id>");
    const forwarded = seen.map(({ headers: sent, ...rest }) => ({
      ...rest,
      headers: Object.keys(sent).sort(),
      identity: [sent["x-member-entity-identifier"], sent["x-auth-scope"], sent["x-forwarded-host"]],
    }));
    vi.restoreAllMocks();
    return { status: response.status, hasRequestId: requestId !== null, headers, body, forwarded, points };
  };
}

describe("a plain API call is answered as through the router", () => {
  it("for every outcome of the chain: forwarded, each refusal, origin failure", async () => {
    const token = await signWithJose(fixedClaims());
    const viewer = await signWithJose(fixedClaims({ scope: "viewer" }));
    const freePlan = await signWithJose(fixedClaims({ organisationEntityIdentifier: "f4r5t6" }));
    const cases: [string, RequestInit][] = [
      ["/grids/1?x=1", { headers: { Authorization: `Bearer ${token}`, "X-Member-Entity-Id": "1", Connection: "x-a" } }],
      ["/grids", { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: '{"name":"a"}' }],
      ["/grids/1", {}],
      ["/grids/1", { headers: { Authorization: "Basic eDp5" } }],
      ["/grids/1", { headers: { Authorization: `Bearer ${token}x` } }],
      ["/grids/1", { method: "DELETE", headers: { Authorization: `Bearer ${viewer}` } }],
      ["/grids/1", { headers: { Authorization: `Bearer ${freePlan}` } }],
      ["/grids/1", { headers: { Authorization: `Bearer ${token}`, "X-HTTP-Method-Override": "DELETE" } }],
      ["/grids/1?_method=DELETE", { headers: { Authorization: `Bearer ${token}` } }],
      ["/grids/./1", { headers: { Authorization: `Bearer ${token}` } }],
      ["/fails", { headers: { Authorization: `Bearer ${token}` } }],
    ];
    const direct = app(false);
    const routed = app(true);
    for (const [path, init] of cases) {
      const [a, b] = [await direct(path, init), await routed(path, init)];
      expect(a.hasRequestId, path).toBe(true);
      expect(a, `${init.method ?? "GET"} ${path}`).toEqual(b);
    }
  });
});
