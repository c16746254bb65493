// Forwarding to the origin: header hygiene, identity headers, the assertion, bodies and failures.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { createLocalJWKSet, jwtVerify } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../src/index";
import { accessTokenFor, fakeOrigin, gateway, problem, GATEWAY } from "./helpers";

afterEach(() => vi.restoreAllMocks());

const architect = () => accessTokenFor("architect@acme.example");

/** The gateway's published assertion keys. */
async function assertionJwks() {
  return createLocalJWKSet(await (await gateway("/.well-known/jwks.json")).json());
}

describe("request to the origin", () => {
  it("keeps method, path and query, strips spoofed identity and hop-by-hop headers, adds trusted ones", async () => {
    const token = await architect();
    const seen = fakeOrigin();
    const response = await gateway("/grids/12/cells?page=2&q=a%20b", {
      method: "PATCH",
      headers: {
        Authorization: `Bearer ${token}`,
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-Custom": "kept",
        "X-Member-Entity-Id": "1",
        X_Member_Entity_Identifier: "spoofed",
        "x-organisation-entity-identifier": "spoofed",
        "X-Organisation-Anything": "spoofed",
        "X-Auth-Scope": "architect organisation",
        X_AUTH_TOKEN_ID: "spoofed",
        "X-Gateway-Assertion": "spoofed",
        "x-gateway-debug": "spoofed",
        Connection: "keep-alive, X-Internal-Secret",
        "X-Internal-Secret": "must not pass",
      },
      body: JSON.stringify({ name: "a" }),
    });
    expect(response.status).toBe(200);
    expect(seen).toHaveLength(1);
    const { method, url, headers, body } = seen[0]!;
    expect(method).toBe("PATCH");
    expect(url).toBe("https://origin.test/api/grids/12/cells?page=2&q=a%20b");
    expect(body).toBe('{"name":"a"}');
    expect(headers).toMatchObject({
      "content-type": "application/json",
      accept: "application/json",
      "x-custom": "kept",
      "x-member-entity-id": "2549",
      "x-member-entity-identifier": "o6q2is",
      "x-organisation-entity-identifier": "m7l9hw",
      "x-auth-scope": "architect",
      "x-auth-secret-type": "fixed",
      "x-request-id": response.headers.get("X-Request-Id"),
    });
    expect(headers["x-auth-token-id"]).toMatch(/^[0-9a-f-]{36}$/);
    const names = Object.keys(headers);
    for (const gone of [
      "authorization",
      "x_member_entity_identifier",
      "x-organisation-anything",
      "x_auth_token_id",
      "x-gateway-debug",
      "connection",
      "x-internal-secret",
    ]) {
      expect(names).not.toContain(gone);
    }
    expect(names.filter((name) => /^x[-_](member|organisation|auth|gateway)[-_]/i.test(name)).sort()).toEqual(
      [
        "x-auth-scope",
        "x-auth-secret-type",
        "x-auth-token-id",
        "x-gateway-assertion",
        "x-member-entity-id",
        "x-member-entity-identifier",
        "x-organisation-entity-identifier",
      ].sort(),
    );
  });

  it("sends exactly one value of each header the gateway writes itself, whatever the client sent", async () => {
    const token = await architect();
    const seen = fakeOrigin();
    const ctx = createExecutionContext();
    const response = await worker.fetch(
      new Request(`${GATEWAY}/grids`, {
        headers: {
          Authorization: `Bearer ${token}`,
          "X-Request-Id": "spoofed",
          traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
          tracestate: "congo=t61rcWkgMzE",
          "Accept-Encoding": "br",
          Connection: "x-request-id",
        },
        cf: { clientAcceptEncoding: "gzip" },
      }),
      env,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(response.status).toBe(200);
    const { headers } = seen[0]!;
    expect(headers["x-request-id"]).toBe(response.headers.get("X-Request-Id"));
    expect(headers.traceparent, "continued, with the gateway's span id").toMatch(
      /^00-0af7651916cd43dd8448eb211c80319c-(?!b7ad6b7169203331)[0-9a-f]{16}-01$/,
    );
    expect(headers.tracestate).toBe("congo=t61rcWkgMzE");
    expect(headers["accept-encoding"], "the client's own Accept-Encoding, as Cloudflare saw it").toBe("gzip");
  });

  it("signs an X-Gateway-Assertion (EdDSA by default, named by its kid) binding identity, method and path for 60 s", async () => {
    const token = await architect();
    const seen = fakeOrigin();
    await gateway("/grids/7?full=1", { method: "DELETE", headers: { Authorization: `Bearer ${token}` } });
    vi.restoreAllMocks();
    const assertion = seen[0]!.headers["x-gateway-assertion"]!;
    const { payload, protectedHeader } = await jwtVerify(assertion, await assertionJwks(), {
      algorithms: ["EdDSA"],
      typ: "gridgate-assertion+jwt",
      issuer: "gridgate",
      audience: "origin",
    });
    expect(Object.keys(protectedHeader)).toEqual(["typ", "alg", "kid"]);
    expect(protectedHeader.alg).toBe("EdDSA");
    expect(payload).toMatchObject({
      method: "DELETE",
      path: "/api/grids/7?full=1",
      memberEntityId: 2549,
      memberEntityIdentifier: "o6q2is",
      organisationEntityIdentifier: "m7l9hw",
      scope: "architect",
      secretType: "fixed",
      jti: seen[0]!.headers["x-request-id"],
      tokenId: seen[0]!.headers["x-auth-token-id"],
    });
    expect(payload.exp! - payload.iat!).toBe(60);
    await expect(
      jwtVerify(assertion, new TextEncoder().encode(env.JWT_SECRET), { algorithms: ["HS256"] }),
    ).rejects.toThrow();
    await expect(
      jwtVerify(assertion, new TextEncoder().encode(env.ASSERTION_SECRET), { algorithms: ["HS256"] }),
    ).rejects.toThrow();
  });

  it("streams a large request body through unchanged", async () => {
    const token = await architect();
    const seen = fakeOrigin();
    const chunk = "0123456789abcdef".repeat(4096);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 32; i++) controller.enqueue(new TextEncoder().encode(chunk));
        controller.close();
      },
    });
    const response = await gateway("/grids", {
      method: "POST",
      headers: { Authorization: `Bearer ${token}` },
      body: stream,
    });
    expect(response.status).toBe(200);
    expect(seen[0]!.body.length).toBe(chunk.length * 32);
    expect(seen[0]!.body).toBe(chunk.repeat(32));
  });

  it("streams the request body: the origin reads the first chunk while the client has not finished sending", async () => {
    const token = await architect();
    let firstChunk = "";
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const reader = new Request(input, init).body!.getReader();
      firstChunk = new TextDecoder().decode((await reader.read()).value);
      await reader.cancel();
      return new Response("got the first chunk");
    });
    let sent = false;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent) return new Promise<void>(() => {});
        sent = true;
        controller.enqueue(new TextEncoder().encode("first chunk of a body that never ends"));
      },
    });
    const deadline = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error("the gateway waited for the whole body")), 2000),
    );
    const response = await Promise.race([
      gateway("/grids", { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: endless }),
      deadline,
    ]);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("got the first chunk");
    expect(firstChunk).toBe("first chunk of a body that never ends");
  });
});

describe("response from the origin", () => {
  it.each([
    [418, "teapot body", { "X-Origin": "yes", "Set-Cookie": "a=b", "Content-Type": "text/plain" }],
    [503, '{"error":"origin maintenance"}', { "Content-Type": "application/json", "Retry-After": "120" }],
    [500, "origin stack trace is the origin's business", { "Content-Type": "text/plain" }],
  ] as const)("passes an origin %i through unchanged, adding only X-Request-Id", async (status, text, headers) => {
    const token = await architect();
    fakeOrigin(() => new Response(text, { status, headers }));
    const response = await gateway("/grids", { headers: { Authorization: `Bearer ${token}` } });
    expect(response.status).toBe(status);
    expect(await response.text()).toBe(text);
    const { "x-request-id": requestId, ...rest } = Object.fromEntries(response.headers);
    expect(rest).toEqual(Object.fromEntries(new Headers(headers)));
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("passes redirects to the client instead of following them", async () => {
    const token = await architect();
    const seen = fakeOrigin(
      () => new Response(null, { status: 302, headers: { Location: "https://origin.test/elsewhere" } }),
    );
    const redirect = await gateway("/grids", { headers: { Authorization: `Bearer ${token}` }, redirect: "manual" });
    expect(redirect.status, await redirect.clone().text()).toBe(302);
    expect(redirect.headers.get("Location")).toBe("https://origin.test/elsewhere");
    expect(seen.map((request) => request.redirect)).toEqual(["manual"]);
  });

  it("502 when the origin is unreachable", async () => {
    const token = await architect();
    vi.spyOn(globalThis, "fetch").mockRejectedValue(new TypeError("Network connection lost."));
    const response = await gateway("/grids", { headers: { Authorization: `Bearer ${token}` } });
    expect(response.status).toBe(502);
    const body = await problem(response);
    expect(body.code).toBe("origin_unreachable");
    expect(JSON.stringify(body)).not.toContain("Network connection lost");
  });

  it("a response body still streaming after ORIGIN_TIMEOUT_MS is passed on whole (the deadline covers the headers)", async () => {
    const token = await architect();
    const encoder = new TextEncoder();
    // Like a real fetch, the fake cuts the body if the request's signal aborts: the gateway must not abort it after the headers.
    fakeOrigin(
      (request) =>
        new Response(
          new ReadableStream<Uint8Array>({
            async start(controller) {
              request.signal.addEventListener("abort", () => controller.error(request.signal.reason));
              controller.enqueue(encoder.encode("first half, "));
              await scheduler.wait(800);
              controller.enqueue(encoder.encode("second half"));
              controller.close();
            },
          }),
        ),
    );
    const response = await gateway("/grids", { headers: { Authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("first half, second half");
  });

  it("504 when the origin does not answer within ORIGIN_TIMEOUT_MS, and the origin request is cancelled", async () => {
    const token = await architect();
    let cancelled = false;
    vi.spyOn(globalThis, "fetch").mockImplementation(
      (input, init) =>
        new Promise((_resolve, reject) => {
          const signal = new Request(input, init).signal;
          signal.addEventListener("abort", () => {
            cancelled = true;
            reject(signal.reason);
          });
        }),
    );
    const started = Date.now();
    const response = await gateway("/grids", { headers: { Authorization: `Bearer ${token}` } });
    expect(response.status).toBe(504);
    expect((await problem(response)).code).toBe("origin_timeout");
    expect(cancelled).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
  });

  it("prefers an ORIGIN service binding over ORIGIN_URL", async () => {
    const token = await architect();
    const network = vi.spyOn(globalThis, "fetch");
    const bound: Request[] = [];
    const ORIGIN = {
      fetch: async (input: RequestInfo, init?: RequestInit) => (
        bound.push(new Request(input, init)),
        new Response("from binding")
      ),
    } as unknown as Fetcher;
    const ctx = createExecutionContext();
    const response = await worker.fetch(
      new Request(`${GATEWAY}/grids?a=1`, { headers: { Authorization: `Bearer ${token}` } }),
      { ...env, ORIGIN },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(await response.text()).toBe("from binding");
    expect(new URL(bound[0]!.url).pathname + new URL(bound[0]!.url).search).toBe("/grids?a=1");
    expect(bound[0]!.headers.get("X-Member-Entity-Identifier")).toBe("o6q2is");
    expect(network).not.toHaveBeenCalled();
  });
});

describe("every response", () => {
  it("carries X-Request-Id, and problem bodies carry the same id", async () => {
    for (const response of [await gateway("/health"), await gateway("/grids"), await gateway("/authenticate")]) {
      const id = response.headers.get("X-Request-Id");
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      if (response.status >= 400) expect((await response.json()) as any).toMatchObject({ request_id: id });
    }
  });

  it("joins ORIGIN_URL's base path and the request's path and query with one slash, and signs exactly that path", async () => {
    const token = await architect();
    const seen = fakeOrigin();
    const ctx = createExecutionContext();
    const request = new Request(`${GATEWAY}/grids/1/cells?range=A1:C3&q=a%20b`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    const response = await worker.fetch(request, { ...env, ORIGIN_URL: "http://origin.test:8080/base/" }, ctx);
    await waitOnExecutionContext(ctx);
    expect(response.status).toBe(200);
    expect(seen[0]!.url).toBe("http://origin.test:8080/base/grids/1/cells?range=A1:C3&q=a%20b");
    vi.restoreAllMocks();
    const { payload } = await jwtVerify(seen[0]!.headers["x-gateway-assertion"]!, await assertionJwks());
    expect(payload.path).toBe("/base/grids/1/cells?range=A1:C3&q=a%20b");
  });

  it.each(["ftp://origin.test", "https://origin.test/api?key=1", "https://user:pw@origin.test", "not a url"])(
    "refuses ORIGIN_URL %j as misconfiguration",
    async (ORIGIN_URL) => {
      const error = vi.spyOn(console, "error").mockImplementation(() => {});
      const seen = fakeOrigin();
      const token = await architect();
      const response = await worker.fetch(
        new Request(`${GATEWAY}/grids`, { headers: { Authorization: `Bearer ${token}` } }),
        { ...env, ORIGIN_URL },
        createExecutionContext(),
      );
      expect(response.status).toBe(500);
      expect((await problem(response)).detail).toBe("The gateway is misconfigured; the operator has been told.");
      expect(error).toHaveBeenCalledWith(expect.stringContaining("ORIGIN_URL must be an http(s) URL"));
      expect(seen).toEqual([]);
    },
  );

  it("returns an opaque 500 problem, without internals, when the gateway is misconfigured", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const ctx = createExecutionContext();
    const response = await worker.fetch(
      new Request(`${GATEWAY}/grids`, { headers: { Authorization: "Bearer x.y.z" } }),
      { ...env, JWT_SECRET: "short" },
      ctx,
    );
    expect(response.status).toBe(500);
    const body = await problem(response);
    expect(body.detail).toBe("The gateway is misconfigured; the operator has been told.");
    expect(JSON.stringify(body)).not.toContain("JWT_SECRET");
    expect(error).toHaveBeenCalledWith(expect.stringContaining("JWT_SECRET must be set to at least 32 bytes"));
  });
});
