// CORS: preflights answered by the gateway, CORS headers on every response to an allowed origin, config checks.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import app from "../src/index";
import { GATEWAY, accessTokenFor, fakeOrigin, fixedClaims, gateway, postLogin, problem, signWithJose } from "./helpers";

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** On CORS_ORIGINS in vitest.config.ts. */
const APP = "https://app.test";
const FOREIGN = "https://evil.test";

function preflight(path: string, origin: string, method = "POST", headers = "content-type"): Promise<Response> {
  return gateway(path, {
    method: "OPTIONS",
    headers: { Origin: origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers },
  });
}

function corsHeaders(response: Response): Record<string, string> {
  return Object.fromEntries([...response.headers].filter(([name]) => name.startsWith("access-control-")));
}

function expectAllowed(response: Response, origin = APP): void {
  expect(response.headers.get("Access-Control-Allow-Origin")).toBe(origin);
  expect(response.headers.get("Access-Control-Allow-Credentials")).toBe("true");
  expect(response.headers.get("Vary")).toMatch(/\bOrigin\b/);
  const exposed = (response.headers.get("Access-Control-Expose-Headers") ?? "").split(/,\s*/);
  expect(exposed).toEqual(expect.arrayContaining(["WWW-Authenticate", "X-Request-Id", "Retry-After"]));
}

/** The gateway's fetch handler under a variant of the test configuration. */
async function withEnv(vars: Record<string, string | undefined>, path: string, init?: RequestInit): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await app.fetch(new Request(GATEWAY + path, init), { ...env, ...vars }, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

describe("preflight from an allowed origin", () => {
  it.each([
    ["/authenticate", "POST"],
    ["/authenticate/refresh", "POST"],
    ["/authenticate/revoke", "POST"],
    ["/authenticate/secrets", "GET"],
    ["/grids", "GET"],
    ["/grids/12/cells", "DELETE"],
    ["/health", "GET"],
  ])("%s (%s): 204 from the gateway, no token needed, never forwarded", async (path, method) => {
    const seen = fakeOrigin();
    const response = await preflight(path, APP, method, "authorization, content-type");
    expect(response.status).toBe(204);
    expect(await response.text()).toBe("");
    expect(corsHeaders(response)).toEqual({
      "access-control-allow-origin": APP,
      "access-control-allow-credentials": "true",
      "access-control-allow-methods": "GET, HEAD, POST, PUT, PATCH, DELETE",
      "access-control-allow-headers": "Authorization, Content-Type",
      "access-control-max-age": "600",
    });
    expect(response.headers.get("Vary")).toBe("Origin");
    expect(response.headers.get("X-Request-Id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen).toHaveLength(0);
  });

  it("answers the second allowed origin with that origin", async () => {
    const response = await preflight("/grids", "http://127.0.0.1:5173");
    expect(response.status).toBe(204);
    expect(response.headers.get("Access-Control-Allow-Origin")).toBe("http://127.0.0.1:5173");
  });

  it("allows the headers CORS_ALLOW_HEADERS names", async () => {
    const response = await withEnv({ CORS_ALLOW_HEADERS: "Authorization, Content-Type, traceparent" }, "/grids", {
      method: "OPTIONS",
      headers: { Origin: APP, "Access-Control-Request-Method": "GET" },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get("Access-Control-Allow-Headers")).toBe("Authorization, Content-Type, traceparent");
  });
});

describe("preflight from another origin", () => {
  it.each([[FOREIGN], ["null"], ["https://app.test.evil.test"], ["http://app.test"], ["https://APP.test"]])(
    "%s: 403 origin_not_allowed without CORS headers, not forwarded",
    async (origin) => {
      const seen = fakeOrigin();
      for (const path of ["/authenticate", "/grids"]) {
        const response = await preflight(path, origin);
        expect(response.status).toBe(403);
        expect((await problem(response)).code).toBe("origin_not_allowed");
        expect(corsHeaders(response)).toEqual({});
      }
      expect(seen).toHaveLength(0);
    },
  );

  it("is refused the same way when CORS is off, and not forwarded", async () => {
    const seen = fakeOrigin();
    const response = await withEnv({ CORS_ORIGINS: undefined }, "/grids", {
      method: "OPTIONS",
      headers: { Origin: APP, "Access-Control-Request-Method": "GET" },
    });
    expect(response.status).toBe(403);
    expect(corsHeaders(response)).toEqual({});
    expect(seen).toHaveLength(0);
  });
});

describe("actual responses to an allowed origin carry the CORS headers", () => {
  it("200 login, and the problem answers 400, 401, 404, 405, 409, 413, 415", async () => {
    const login = await postLogin(
      { email: "architect@acme.example", password: "gridgate-dev-password" },
      { Origin: APP },
    );
    expect(login.status).toBe(200);
    expectAllowed(login);

    const responses: [number, Response][] = [
      [
        400,
        await gateway("/authenticate", {
          method: "POST",
          headers: { Origin: APP, "Content-Type": "application/json" },
          body: "{",
        }),
      ],
      [401, await postLogin({ email: "architect@acme.example", password: "wrong" }, { Origin: APP })],
      [401, await gateway("/grids", { headers: { Origin: APP } })],
      [404, await gateway("/authenticate/nothing", { headers: { Origin: APP } })],
      [405, await gateway("/authenticate", { headers: { Origin: APP } })],
      [409, await postLogin({ email: "consultant@example.com", password: "gridgate-dev-password" }, { Origin: APP })],
      [
        413,
        await gateway("/authenticate", {
          method: "POST",
          headers: { Origin: APP, "Content-Type": "application/json" },
          body: JSON.stringify({ email: "x".repeat(17 * 1024) }),
        }),
      ],
      [
        415,
        await gateway("/authenticate", {
          method: "POST",
          headers: { Origin: APP, "Content-Type": "text/plain" },
          body: "x",
        }),
      ],
    ];
    for (const [status, response] of responses) {
      expect(response.status).toBe(status);
      expect(response.headers.get("Content-Type")).toBe("application/problem+json");
      expectAllowed(response);
    }
  });

  it("403 insufficient_scope with its WWW-Authenticate exposed", async () => {
    fakeOrigin();
    const token = await accessTokenFor("viewer@acme.example");
    const response = await gateway("/grids", {
      method: "POST",
      headers: { Origin: APP, Authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(403);
    expect(response.headers.get("WWW-Authenticate")).toContain("insufficient_scope");
    expectAllowed(response);
  });

  it("429 with Retry-After", async () => {
    const email = `cors-${crypto.randomUUID().slice(0, 8)}@nowhere.example`;
    const responses = [];
    for (let i = 0; i < 8; i++) responses.push(await postLogin({ email, password: "wrong" }, { Origin: APP }));
    const limited = responses.find((response) => response.status === 429);
    expect(limited).toBeDefined();
    expect(limited!.headers.get("Retry-After")).toMatch(/^[0-9]+$/);
    expectAllowed(limited!);
  });

  it("502 and 504 when the origin fails", async () => {
    const token = await signWithJose(fixedClaims());
    vi.spyOn(globalThis, "fetch").mockRejectedValueOnce(new TypeError("connection refused"));
    const unreachable = await gateway("/grids", { headers: { Origin: APP, Authorization: `Bearer ${token}` } });
    expect(unreachable.status).toBe(502);
    expectAllowed(unreachable);
    vi.spyOn(globalThis, "fetch").mockImplementation(
      (input, init) =>
        new Promise((_resolve, reject) => {
          const signal = new Request(input, init).signal;
          signal.addEventListener("abort", () => reject(signal.reason));
        }),
    );
    const timeout = await gateway("/grids", { headers: { Origin: APP, Authorization: `Bearer ${token}` } });
    expect(timeout.status).toBe(504);
    expectAllowed(timeout);
  });

  it("500 when the deployment is misconfigured still reaches the app", async () => {
    const response = await withEnv({ JWT_SECRET: "short" }, "/grids", {
      headers: { Origin: APP, Authorization: "Bearer a.b.c" },
    });
    expect(response.status).toBe(500);
    expectAllowed(response);
  });

  it("origin responses pass through; the origin's own CORS headers are replaced by the gateway's", async () => {
    const seen = fakeOrigin(
      () =>
        new Response("{}", {
          status: 201,
          headers: {
            "Content-Type": "application/json",
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": "TRACE",
            "Access-Control-Expose-Headers": "X-Secret",
            "Access-Control-Allow-Credentials": "false",
            Vary: "Accept-Encoding",
            "X-Origin": "yes",
          },
        }),
    );
    const token = await signWithJose(fixedClaims());
    const response = await gateway("/grids", {
      method: "POST",
      headers: { Origin: APP, Authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(201);
    expect(response.headers.get("X-Origin")).toBe("yes");
    expect(response.headers.get("Vary")).toBe("Accept-Encoding, Origin");
    expect(corsHeaders(response)).toEqual({
      "access-control-allow-origin": APP,
      "access-control-allow-credentials": "true",
      "access-control-expose-headers": "WWW-Authenticate, X-Request-Id, Retry-After, RateLimit, RateLimit-Policy",
    });
    expect(seen[0]!.headers.origin).toBe(APP);
  });
});

describe("requests from another origin, or none", () => {
  it("another origin: processed, but without CORS headers (the browser keeps the answer from the page)", async () => {
    fakeOrigin(() => Response.json({}, { headers: { "Access-Control-Allow-Origin": "*" } }));
    const token = await signWithJose(fixedClaims());
    const response = await gateway("/grids", { headers: { Origin: FOREIGN, Authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    expect(corsHeaders(response)).toEqual({});
    expect(response.headers.get("Vary")).toBe("Origin");
    const login = await postLogin(
      { email: "architect@acme.example", password: "gridgate-dev-password" },
      { Origin: FOREIGN },
    );
    expect(login.status).toBe(200);
    expect(corsHeaders(login)).toEqual({});
    expect(login.headers.getSetCookie()).toEqual([]);
  });

  it("no Origin: no CORS headers; the origin's response headers pass through untouched", async () => {
    fakeOrigin(() => Response.json({}, { headers: { "Access-Control-Allow-Origin": "*" } }));
    const token = await signWithJose(fixedClaims());
    const response = await gateway("/grids", { headers: { Authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    expect(corsHeaders(response)).toEqual({ "access-control-allow-origin": "*" });
    expect(response.headers.get("Vary")).toBeNull();
  });

  it("CORS off: an allowed-looking origin gets no CORS headers, and a request without Origin no Vary", async () => {
    fakeOrigin();
    const token = await signWithJose(fixedClaims());
    const withOrigin = await withEnv({ CORS_ORIGINS: "" }, "/grids", {
      headers: { Origin: APP, Authorization: `Bearer ${token}` },
    });
    expect(withOrigin.status).toBe(200);
    expect(corsHeaders(withOrigin)).toEqual({});
    const without = await withEnv({ CORS_ORIGINS: undefined }, "/grids", {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(without.status).toBe(200);
    expect(without.headers.get("Vary")).toBeNull();
  });
});

describe("configuration", () => {
  it.each([
    ["*"],
    ["https://app.test/"],
    ["https://app.test/path"],
    ["app.test"],
    ["https://APP.test"],
    ["https://app.test:443"],
    ["ftp://app.test"],
    ["https://user@app.test"],
    ["https://app.test, null"],
  ])("CORS_ORIGINS=%j is a configuration error (opaque 500)", async (value) => {
    const response = await withEnv({ CORS_ORIGINS: value }, "/health", { headers: { Origin: "https://app.test" } });
    expect(response.status).toBe(500);
    expect((await problem(response)).code).toBe("internal");
  });

  it.each([["*"], ["X Bad"], ["Authorization, Bad:Header"]])(
    "CORS_ALLOW_HEADERS=%j is a configuration error",
    async (value) => {
      const response = await withEnv({ CORS_ALLOW_HEADERS: value }, "/health", {
        headers: { Origin: "https://app.test" },
      });
      expect(response.status).toBe(500);
    },
  );

  it("a bad CORS_ORIGINS is read on the first request that needs it; requests without Origin never read it", async () => {
    expect((await withEnv({ CORS_ORIGINS: "*" }, "/health")).status).toBe(200);
    fakeOrigin();
    const token = await signWithJose(fixedClaims());
    expect(
      (await withEnv({ CORS_ORIGINS: "*" }, "/grids", { headers: { Authorization: `Bearer ${token}` } })).status,
    ).toBe(200);
    expect((await withEnv({ CORS_ORIGINS: "*" }, "/grids", { headers: { Origin: APP } })).status).toBe(500);
  });

  it("accepts spaces around entries and ports", async () => {
    const response = await withEnv({ CORS_ORIGINS: " http://localhost:5173 , https://app.test " }, "/health", {
      headers: { Origin: "http://localhost:5173" },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("Access-Control-Allow-Origin")).toBe("http://localhost:5173");
  });
});
