// Plan gate and scope policy through the HTTP surface; refusals never reach the origin.
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { accessTokenFor, fakeOrigin, fixedClaims, gateway, problem, signWithJose, type OriginSeen } from "./helpers";

let seen: OriginSeen[];
beforeEach(() => {
  seen = fakeOrigin();
});
afterEach(() => vi.restoreAllMocks());

async function call(method: string, path: string, claims: Record<string, unknown>): Promise<Response> {
  const token = await signWithJose(fixedClaims(claims));
  return gateway(path, { method, headers: { Authorization: `Bearer ${token}` } });
}

describe("plan gate", () => {
  it("403 plan_not_eligible for a free-plan organisation's validly signed token", async () => {
    const response = await call("GET", "/grids", {
      organisationEntityIdentifier: "f4r5t6",
      memberEntityIdentifier: "f3g6hj",
      memberEntityId: 2554,
    });
    expect(response.status).toBe(403);
    expect((await problem(response)).code).toBe("plan_not_eligible");
    expect(seen).toEqual([]);
  });

  it("403 for an unknown or suspended organisation", async () => {
    await env.DB.prepare(
      "INSERT INTO organisations (identifier, name, domain, plan, status) VALUES ('susp01', 'S', 'susp01.example', 'enterprise', 'suspended')",
    ).run();
    for (const organisation of ["nosuch", "susp01"]) {
      const response = await call("GET", "/grids", { organisationEntityIdentifier: organisation });
      expect(response.status).toBe(403);
      expect((await problem(response)).code).toBe("plan_not_eligible");
    }
    expect(seen).toEqual([]);
  });

  it("lets professional and enterprise organisations through", async () => {
    expect((await call("GET", "/grids", {})).status).toBe(200);
    expect((await call("GET", "/grids", { organisationEntityIdentifier: "q1w2e3" })).status).toBe(200);
    expect(seen).toHaveLength(2);
  });
});

describe("scope policy", () => {
  const allowed: [string, string, string][] = [
    ["architect", "DELETE", "/grids/1"],
    ["architect", "OPTIONS", "/cells"],
    ["organisation", "DELETE", "/anything/else"],
    ["builder", "GET", "/grids"],
    ["builder", "HEAD", "/grids"],
    ["builder", "POST", "/grids"],
    ["builder", "PUT", "/grids/1"],
    ["builder", "PATCH", "/grids/1"],
    ["user", "GET", "/grids/12/cells"],
    ["user", "HEAD", "/cells"],
    ["grids", "DELETE", "/grids/1"],
    ["grids", "POST", "/grids"],
    ["getGrids", "GET", "/grids/12/cells"],
    ["getGrids", "HEAD", "/grids"],
    ["deleteGrids", "DELETE", "/grids/3"],
    ["getCells grids", "PATCH", "/grids/3"],
    ["grids", "GET", "/%67rids/1"],
  ];
  const denied: [string, string, string, string][] = [
    ["builder", "DELETE", "/grids/1", "deleteGrids grids organisation architect"],
    ["builder", "OPTIONS", "/grids", "optionsGrids grids organisation architect"],
    ["user", "POST", "/grids", "postGrids grids builder organisation architect"],
    ["user", "DELETE", "/grids/1", "deleteGrids grids organisation architect"],
    ["grids", "GET", "/cells", "getCells cells user builder organisation architect"],
    ["getGrids", "POST", "/grids", "postGrids grids builder organisation architect"],
    ["getGrids", "GET", "/cells", "getCells cells user builder organisation architect"],
    ["getGrids", "GET", "/Grids", "user builder organisation architect"],
    ["grids", "GET", "/Grids/1", "user builder organisation architect"],
    ["deleteGrids", "GET", "/grids", "getGrids grids user builder organisation architect"],
    ["", "GET", "/grids", "getGrids grids user builder organisation architect"],
    ["admin root superuser", "GET", "/grids", "getGrids grids user builder organisation architect"],
    ["Architect", "GET", "/grids", "getGrids grids user builder organisation architect"],
    ["getGrids", "GET", "/", "user builder organisation architect"],
    ["getGrids", "GET", "/%2567rids", "user builder organisation architect"],
    // a role name is never a <resource> scope: `user` does not mean "every method on /user"
    ["user", "DELETE", "/user/42", "organisation architect"],
    ["builder", "DELETE", "/builder", "organisation architect"],
    // scope names that are Object.prototype members are unknown scopes, not a crash
    ["constructor", "GET", "/grids", "getGrids grids user builder organisation architect"],
    ["__proto__ toString hasOwnProperty", "GET", "/grids", "getGrids grids user builder organisation architect"],
    // a resource that is no valid scope token has no granular scopes, and never reaches the challenge
    ["getGrids", "GET", "/grids%00", "user builder organisation architect"],
    ["getGrids", "GET", "/a%0D%0Ab", "user builder organisation architect"],
    ["getGrids", "GET", "/x%22%2C%20error%3D%22invalid_token", "user builder organisation architect"],
  ];

  it.each(allowed)("scope %j may %s %s", async (scope, method, path) => {
    const response = await call(method, path, { scope });
    expect(response.status).toBe(200);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe(method);
  });

  it.each(denied)("scope %j may not %s %s", async (scope, method, path, needed) => {
    const response = await call(method, path, { scope });
    expect(response.status).toBe(403);
    expect(response.headers.get("WWW-Authenticate")).toBe(
      `Bearer realm="api", error="insufficient_scope", scope="${needed}"`,
    );
    expect((await problem(response)).code).toBe("insufficient_scope");
    expect(seen).toEqual([]);
  });

  it("gives seeded members their role's access", async () => {
    const viewer = await accessTokenFor("viewer@acme.example");
    const reader = await accessTokenFor("reader@acme.example");
    const post = (token: string) =>
      gateway("/grids", {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: "{}",
      });
    expect((await post(viewer)).status).toBe(403);
    expect((await post(reader)).status).toBe(403);
    expect((await gateway("/grids/1", { headers: { Authorization: `Bearer ${reader}` } })).status).toBe(200);
    expect(seen).toHaveLength(1);
  });

  it.each(["/grids/..%2Fadmin", "/grids%2fadmin", "/grids/..%5Cadmin"])(
    "400 for %s: encoded separators could mean another resource to the origin",
    async (path) => {
      const response = await call("GET", path, { scope: "architect" });
      expect(response.status).toBe(400);
      expect((await problem(response)).code).toBe("invalid_request");
      expect(seen).toEqual([]);
    },
  );

  it("400 for a path whose first segment is not valid percent-encoding", async () => {
    const response = await call("GET", "/%E0%A4%A/x", { scope: "architect" });
    expect(response.status).toBe(400);
    expect(seen).toEqual([]);
  });
});
