// Each kind of request has one way in: the gateway's own routes (any case, any percent-encoding) or the proxied API.
import { afterEach, describe, expect, it, vi } from "vitest";
import { isGatewayRoute } from "../src/worker";
import { GATEWAY, fakeOrigin, fixedClaims, gateway, problem, signWithJose } from "./helpers";

afterEach(() => vi.restoreAllMocks());

describe("which way in a request takes", () => {
  it("the gateway's routes own /health, /openapi.json and /authenticate…, in any case and percent-encoding", () => {
    for (const path of [
      "/health",
      "/HEALTH",
      "/openapi.json",
      "/OpenAPI.json",
      "/authenticate",
      "/authenticate/",
      "/authenticate/refresh",
      "/Authenticate",
      "/AUTHENTICATE/secrets",
      "/%61uthenticate",
      "/%41UTHENTICATE/admin/audit",
      "/health?x=1",
    ])
      expect(isGatewayRoute(GATEWAY + path), path).toBe(true);
  });

  it("every other path is the proxied API's, including ones that only look alike", () => {
    for (const path of [
      "/",
      "/grids/1",
      "/authenticatex",
      "/grids/authenticate",
      "/health/",
      "/health/x",
      "/healthcheck",
      "/openapi.json/x",
      "/authenticate%2Fx",
      "/%zz",
    ])
      expect(isGatewayRoute(GATEWAY + path), path).toBe(false);
  });

  it("a gateway path no route serves is a 404 problem from the gateway, never forwarded", async () => {
    const seen = fakeOrigin();
    const token = await signWithJose(fixedClaims());
    for (const path of ["/AUTHENTICATE/secrets", "/Health", "/%61uthenticate/nothing", "/authenticate/nothing"]) {
      const response = await gateway(path, { headers: { Authorization: `Bearer ${token}` } });
      expect(response.status, path).toBe(404);
      expect((await problem(response)).code).toBe("not_found");
    }
    expect(seen).toHaveLength(0);
  });

  it("a gateway route spelled with a trailing slash is a 404, whatever the method and body", async () => {
    const seen = fakeOrigin();
    const token = await signWithJose(fixedClaims());
    const json = { "Content-Type": "application/json" };
    const login = JSON.stringify({ email: "architect@acme.example", password: "gridgate-dev-password" });
    for (const [method, path, body] of [
      ["POST", "/authenticate/", login],
      ["POST", "/authenticate/refresh/", "{}"],
      ["POST", "/authenticate/revoke/", "{}"],
      ["GET", "/.well-known/jwks.json/", undefined],
      ["GET", "/authenticate/sso/start/", undefined],
      ["GET", "/authenticate/secrets/", undefined],
      ["DELETE", "/authenticate/secrets/abc/", undefined],
      ["POST", "/authenticate/admin/org/list/", "{}"],
    ] as const) {
      const response = await gateway(path, { method, body, headers: { ...json, Authorization: `Bearer ${token}` } });
      expect(response.status, `${method} ${path}`).toBe(404);
      expect((await problem(response)).code).toBe("not_found");
    }
    expect(seen).toHaveLength(0);
  });

  it("a look-alike path goes through every step of the proxied API, then to the origin", async () => {
    const seen = fakeOrigin();
    expect((await gateway("/healthcheck")).status, "no token").toBe(401);
    const token = await signWithJose(fixedClaims());
    expect((await gateway("/healthcheck", { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
    expect(seen.map((request) => new URL(request.url).pathname)).toEqual(["/api/healthcheck"]);
  });
});
