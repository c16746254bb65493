// Every response the gateway makes itself: `X-Content-Type-Options: nosniff` and `Vary: Origin`; every 401 a challenge.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SEED_PASSWORD } from "../scripts/seed-data";
import { GatewayError, type ProblemCode } from "../src/gateway-error";
import { PROBLEMS, problemResponse } from "../src/http/problem";
import worker from "../src/index";
import { fakeOrigin, fixedClaims, gateway, GATEWAY, postLogin, signWithJose } from "./helpers";

afterEach(() => vi.restoreAllMocks());

/** On CORS_ORIGINS in vitest.config.ts. */
const APP = "https://app.test";

const bearer = async () => ({ Authorization: `Bearer ${await signWithJose(fixedClaims())}` });

const GATEWAY_MADE: [string, () => Promise<Response>][] = [
  ["GET /health", () => gateway("/health")],
  ["HEAD /health", () => gateway("/health", { method: "HEAD" })],
  ["GET /openapi.json", () => gateway("/openapi.json")],
  ["GET /.well-known/jwks.json", () => gateway("/.well-known/jwks.json")],
  ["GET /.well-known/jwks.json → 304", () => gateway("/.well-known/jwks.json", { headers: { "If-None-Match": "*" } })],
  ["GET /.well-known/other → 404", () => gateway("/.well-known/other")],
  ["POST /authenticate → 200", () => postLogin({ email: "viewer@acme.example", password: SEED_PASSWORD })],
  ["POST /authenticate → 401", () => postLogin({ email: "viewer@acme.example", password: "wrong" })],
  ["GET /authenticate → 405", () => gateway("/authenticate")],
  [
    "POST /authenticate/refresh → 400",
    () =>
      gateway("/authenticate/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: "nope" }),
      }),
  ],
  ["GET /authenticate/secrets → 401", () => gateway("/authenticate/secrets")],
  ["GET /grids → 401", () => gateway("/grids")],
  ["HEAD /grids → 401", () => gateway("/grids", { method: "HEAD" })],
  [
    "GET /grids with a method override → 400",
    async () => gateway("/grids", { headers: { ...(await bearer()), "X-HTTP-Method-Override": "DELETE" } }),
  ],
  [
    "preflight of a gateway route → 204",
    () =>
      gateway("/authenticate", {
        method: "OPTIONS",
        headers: { Origin: APP, "Access-Control-Request-Method": "POST" },
      }),
  ],
  [
    "preflight of the proxied API → 204",
    () => gateway("/grids", { method: "OPTIONS", headers: { Origin: APP, "Access-Control-Request-Method": "GET" } }),
  ],
  [
    "preflight from another origin → 403",
    () =>
      gateway("/grids", {
        method: "OPTIONS",
        headers: { Origin: "https://evil.test", "Access-Control-Request-Method": "GET" },
      }),
  ],
  [
    "misconfigured → 500",
    async () => {
      vi.spyOn(console, "error").mockImplementation(() => {});
      const ctx = createExecutionContext();
      const response = await worker.fetch(
        new Request(`${GATEWAY}/grids`, { headers: await bearer() }),
        { ...env, ASSERTION_ALG: "RS256" },
        ctx,
      );
      await waitOnExecutionContext(ctx);
      return response;
    },
  ],
];

describe("every response the gateway makes itself", () => {
  it.each(GATEWAY_MADE)(
    "%s: X-Content-Type-Options: nosniff and Vary: Origin, with or without an Origin",
    async (_name, send) => {
      const response = await send();
      expect(response.headers.get("X-Content-Type-Options")).toBe("nosniff");
      expect(response.headers.get("Vary")).toMatch(/(^|,)\s*Origin\s*(,|$)/);
    },
  );

  it("the cacheable ones vary on Origin, so a cache never hands the CORS-less copy to a browser app", async () => {
    for (const path of ["/openapi.json", "/.well-known/jwks.json"]) {
      const plain = await gateway(path);
      expect(plain.headers.get("Cache-Control")).toMatch(/^public, max-age=\d+$/);
      expect(plain.headers.get("Vary")).toBe("Origin");
      expect(plain.headers.get("Access-Control-Allow-Origin")).toBeNull();
      const fromApp = await gateway(path, { headers: { Origin: APP } });
      expect(fromApp.headers.get("Vary")).toBe("Origin");
      expect(fromApp.headers.get("Access-Control-Allow-Origin")).toBe(APP);
    }
  });

  it("the origin's own responses pass through without them", async () => {
    fakeOrigin(() => new Response("text", { headers: { "Content-Type": "text/plain" } }));
    const response = await gateway("/grids", { headers: await bearer() });
    expect(response.status).toBe(200);
    expect(response.headers.get("X-Content-Type-Options")).toBeNull();
    expect(response.headers.get("Vary")).toBeNull();
  });
});

describe("every 401 carries a WWW-Authenticate challenge (RFC 9110 §11.6.1)", () => {
  it.each([
    ["bad credentials (invalid_credentials)", () => postLogin({ email: "viewer@acme.example", password: "wrong" })],
    ["unknown email (invalid_credentials)", () => postLogin({ email: "nobody@acme.example", password: "wrong" })],
    ["no token (missing_token)", () => gateway("/grids")],
    ["a bad token (invalid_token)", () => gateway("/grids", { headers: { Authorization: "Bearer a.b.c" } })],
    ["Basic (basic_not_supported)", () => gateway("/grids", { headers: { Authorization: "Basic eDp5" } })],
  ])("%s", async (_name, send) => {
    const response = await send();
    expect(response.status).toBe(401);
    expect(response.headers.get("WWW-Authenticate")).toMatch(/^Bearer realm="api"/);
  });

  it("and so does every 401 of the catalogue", () => {
    const unauthorised = (Object.keys(PROBLEMS) as ProblemCode[]).filter((code) => PROBLEMS[code].status === 401);
    expect(unauthorised.sort()).toEqual([
      "basic_not_supported",
      "invalid_credentials",
      "invalid_token",
      "missing_token",
    ]);
    for (const code of unauthorised)
      expect(problemResponse(new GatewayError(code, "x"), "id").headers.get("WWW-Authenticate"), code).toMatch(
        /^Bearer realm="api"/,
      );
  });

  it("a refused refresh token takes RFC 6749 §5.2's 400 invalid_grant, without a challenge", async () => {
    const response = await gateway("/authenticate/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: `ggr_${"A".repeat(43)}` }),
    });
    expect(response.status).toBe(400);
    expect(response.headers.get("WWW-Authenticate")).toBeNull();
    expect(((await response.json()) as { code: string }).code).toBe("invalid_grant");
  });

  it("a login's 401 is the same whether the email, the password or the domain was wrong", async () => {
    const answers = await Promise.all([
      postLogin({ email: "nobody@acme.example", password: SEED_PASSWORD }),
      postLogin({ email: "viewer@acme.example", password: "wrong" }),
      postLogin({ email: "viewer@acme.example", password: SEED_PASSWORD, domain: "enterprise.example" }),
    ]);
    const challenges = answers.map((response) => [response.status, response.headers.get("WWW-Authenticate")]);
    expect(new Set(challenges.map((pair) => JSON.stringify(pair))).size).toBe(1);
    expect(challenges[0]).toEqual([401, 'Bearer realm="api"']);
  });
});
