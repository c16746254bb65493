// The demo origin of `npm run dev`: serves what the gateway forwards, refuses everything without a valid assertion.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import demoOrigin, { type DemoOriginEnv } from "../examples/demo-origin/src/index";
import { parseConfig } from "../src/config";
import worker from "../src/index";
import { signAssertion } from "../src/proxy/assertion";
import { createServices } from "../src/services";
import { SIGN_PARAMS } from "../src/tokens/assertion-keys";
import type { JwsSigner } from "../src/tokens/sign";
import { outboundHeaders } from "../src/proxy/header-rules";
import { addIdentityHeaders } from "../src/proxy/headers";
import type { AccessClaims } from "../src/tokens/claims";
import { accessTokenFor, demoOriginVerifyingByJwks, GATEWAY } from "./helpers";

let ORIGIN_ENV: DemoOriginEnv;
beforeEach(() => {
  ORIGIN_ENV = demoOriginVerifyingByJwks();
});
afterEach(() => vi.restoreAllMocks());
const ARCHITECT: AccessClaims = {
  memberEntityId: 2549,
  memberEntityIdentifier: "o6q2is",
  organisationEntityIdentifier: "m7l9hw",
  scope: "architect",
  secretType: "fixed",
  jti: "token-1",
};

/** Sends `path` through the real gateway with the demo origin bound as the `ORIGIN` service. */
async function viaGateway(path: string, token: string, init: RequestInit = {}): Promise<Response> {
  const ORIGIN = {
    fetch: (input: RequestInfo, init?: RequestInit) => demoOrigin.fetch(new Request(input, init), ORIGIN_ENV),
  } as unknown as Fetcher;
  const ctx = createExecutionContext();
  const headers = { Authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) };
  const response = await worker.fetch(new Request(GATEWAY + path, { ...init, headers }), { ...env, ORIGIN }, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

/** The gateway's own assertion signer under the test configuration. */
async function gatewaySigner(): Promise<JwsSigner> {
  return (await createServices(env).keys.assertionKeys()).signer;
}

/** A request as the gateway forwards it, with an assertion signed for `signedFor` (default: the same method and path). */
async function forwarded(
  method: string,
  path: string,
  signedFor = { method, path },
  signer?: JwsSigner,
): Promise<Request> {
  const config = parseConfig(env);
  const headers = outboundHeaders();
  addIdentityHeaders(
    headers,
    ARCHITECT,
    "req-1",
    await signAssertion(
      config,
      signer ?? (await gatewaySigner()),
      ARCHITECT,
      { ...signedFor, requestId: "req-1" },
      Math.floor(Date.now() / 1000),
    ),
  );
  return new Request(`http://127.0.0.1:8788${path}`, { method, headers });
}

async function send(request: Request): Promise<{ status: number; body: Record<string, any> }> {
  const response = await demoOrigin.fetch(request, ORIGIN_ENV);
  return { status: response.status, body: await response.json() };
}

describe("demo origin behind the gateway", () => {
  it("lists grids and echoes the identity headers of the logged-in member with a verified assertion", async () => {
    const response = await viaGateway("/grids", await accessTokenFor("architect@acme.example"));
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, any>;
    expect(body.grids.map((grid: { id: string }) => grid.id)).toEqual(expect.arrayContaining(["1", "2"]));
    expect(body.received).toMatchObject({
      method: "GET",
      path: "/grids",
      headers: {
        "X-Member-Entity-Id": "2549",
        "X-Member-Entity-Identifier": "o6q2is",
        "X-Organisation-Entity-Identifier": "m7l9hw",
        "X-Auth-Scope": "architect",
        "X-Auth-Secret-Type": "fixed",
      },
      assertion: { verified: true },
    });
    expect(body.received.headers["X-Request-Id"]).toBe(response.headers.get("X-Request-Id"));
  });

  it("creates a grid with POST and returns it with GET /grids/:id", async () => {
    const token = await accessTokenFor("architect@acme.example");
    const created = await viaGateway("/grids", token, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: "Basement", rows: 6, columns: 9 }),
    });
    expect(created.status).toBe(201);
    const { grid } = (await created.json()) as { grid: Record<string, unknown> };
    expect(grid).toMatchObject({ name: "Basement", rows: 6, columns: 9, createdBy: "o6q2is" });
    const fetched = await viaGateway(`/grids/${grid.id}`, token);
    expect(fetched.status).toBe(200);
    expect(((await fetched.json()) as { grid: unknown }).grid).toEqual(grid);
  });

  it("answers 400 to an invalid grid and 404 to an unknown one", async () => {
    const token = await accessTokenFor("architect@acme.example");
    const invalid = await viaGateway("/grids", token, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: "" }),
    });
    expect(invalid.status).toBe(400);
    expect((await viaGateway("/grids/999999", token)).status).toBe(404);
  });
});

describe("demo origin echoes every header it received, so the forwarding rules are visible", () => {
  it("shows ordinary headers as sent, the gateway's identity and forwarding headers, and nothing the gateway strips", async () => {
    const response = await viaGateway("/grids", await accessTokenFor("architect@acme.example"), {
      headers: {
        Accept: "application/json",
        "X-Custom": "kept",
        "CF-Connecting-IP": "203.0.113.9",
        "X-Original-URL": "/members",
        "X-Rewrite-URL": "/members",
        "X-Forwarded-For": "127.0.0.1",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "http",
        Forwarded: "for=127.0.0.1",
        "X-Member-Entity-Identifier": "spoofed",
        Connection: "x-secret-hop",
        "X-Secret-Hop": "leak",
      },
    });
    expect(response.status).toBe(200);
    const { received } = (await response.json()) as { received: { headers: Record<string, string> } };
    expect(received.headers).toMatchObject({
      Accept: "application/json",
      "X-Custom": "kept",
      "X-Forwarded-For": "203.0.113.9",
      "X-Forwarded-Host": "gateway.test",
      "X-Forwarded-Proto": "https",
      Forwarded: "for=203.0.113.9;host=gateway.test;proto=https",
      "X-Member-Entity-Identifier": "o6q2is",
      "X-Auth-Scope": "architect",
    });
    expect(received.headers["X-Gateway-Assertion"]).toMatch(/^ey/);
    for (const gone of ["Authorization", "X-Original-Url", "X-Rewrite-Url", "Connection", "X-Secret-Hop"])
      expect(Object.keys(received.headers)).not.toContain(gone);
  });

  it("never sees a request with a method override or an ambiguous path: the gateway refuses it with 400", async () => {
    const token = await accessTokenFor("builder@acme.example");
    const override = await viaGateway("/grids", token, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-HTTP-Method-Override": "DELETE" },
      body: JSON.stringify({ name: "x" }),
    });
    expect(override.status).toBe(400);
    expect(((await override.json()) as Record<string, unknown>).received).toBeUndefined();
    for (const path of ["/grids/..;/members", "/grids/%252e%252e/members"]) {
      const ambiguous = await viaGateway(path, token);
      expect(ambiguous.status).toBe(400);
      expect(((await ambiguous.json()) as Record<string, unknown>).code).toBe("ambiguous_path");
    }
  });
});

describe("demo origin refuses requests that did not come through the gateway", () => {
  it("accepts an assertion for exactly this method and path", async () => {
    const { status, body } = await send(await forwarded("GET", "/grids/1"));
    expect(status).toBe(200);
    expect(body.grid.id).toBe("1");
  });

  it.each([
    [
      "no assertion",
      async () => new Request("http://127.0.0.1:8788/grids", { headers: { "X-Member-Entity-Identifier": "o6q2is" } }),
      "no X-Gateway-Assertion header",
    ],
    [
      "another path",
      () => forwarded("GET", "/grids/2", { method: "GET", path: "/grids/1" }),
      "assertion is for another request",
    ],
    [
      "another method",
      () => forwarded("POST", "/grids", { method: "GET", path: "/grids" }),
      "assertion is for another request",
    ],
    [
      "another key under the gateway's kid",
      async () => {
        const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign"])) as CryptoKeyPair;
        const { kid } = await gatewaySigner();
        return forwarded("GET", "/grids", undefined, {
          alg: "EdDSA",
          kid,
          key: pair.privateKey,
          params: SIGN_PARAMS.EdDSA,
        });
      },
      "signature verification failed",
    ],
  ])("401 with %s", async (_name, makeRequest, error) => {
    const { status, body } = await send(await makeRequest());
    expect(status).toBe(401);
    expect(body.received.assertion).toEqual({ verified: false, error });
  });

  it("401 when the member header was changed after signing", async () => {
    const request = await forwarded("GET", "/grids");
    request.headers.set("X-Member-Entity-Identifier", "someone-else");
    const { status, body } = await send(request);
    expect(status).toBe(401);
    expect(body.received.assertion.error).toBe("identity headers do not match the assertion");
  });

  it("401 when the origin knows no JWKS URL", async () => {
    const response = await demoOrigin.fetch(await forwarded("GET", "/grids"), {});
    expect(response.status).toBe(401);
    expect(((await response.json()) as any).received.assertion.error).toBe("no JWKS configured");
  });

  it("with ASSERTION_ALG=HS256 it verifies by ASSERTION_SECRET (and ASSERTION_SECRET_PREVIOUS), and only then", async () => {
    const hs256 = { ...env, ASSERTION_ALG: "HS256" };
    const signer = (await createServices(hs256).keys.assertionKeys()).signer;
    const request = await forwarded("GET", "/grids", undefined, signer);
    expect((await demoOrigin.fetch(request.clone(), ORIGIN_ENV)).status).toBe(401);
    for (const secrets of [
      { ASSERTION_SECRET: env.ASSERTION_SECRET },
      {
        ASSERTION_SECRET: "the-next-assertion-secret-0123456789abcdef012",
        ASSERTION_SECRET_PREVIOUS: env.ASSERTION_SECRET,
      },
    ])
      expect((await demoOrigin.fetch(request.clone(), { ...ORIGIN_ENV, ...secrets })).status).toBe(200);
  });
});
