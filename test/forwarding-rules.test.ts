// What the origin gets besides identity: method overrides refused, URL overrides stripped,
// X-Forwarded-* / Forwarded written by the gateway, Connection-named headers (docs/forwarding.md).
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../src/index";
import { accessTokenFor, authorization, fakeOrigin, GATEWAY, gateway, problem } from "./helpers";

afterEach(() => vi.restoreAllMocks());

/** The `Authorization` header of a seeded member's fresh token. */
const authorizationOf = async (email: string) => authorization(await accessTokenFor(email));

describe("method-override headers and parameters: refused with 400, never forwarded", () => {
  it.each([
    ["X-HTTP-Method-Override", "DELETE"],
    ["X-HTTP-Method", "DELETE"],
    ["X-Method-Override", "DELETE"],
    ["x-http-method-override", "PUT"],
    ["X_HTTP_Method_Override", "DELETE"],
    ["X-HTTP_METHOD", "PATCH"],
    ["x_method_override", "DELETE"],
  ])("a viewer's GET /grids with %s: %s", async (name, value) => {
    const seen = fakeOrigin();
    const response = await gateway("/grids", {
      headers: { ...(await authorizationOf("viewer@acme.example")), [name]: value },
    });
    expect(response.status).toBe(400);
    const body = await problem(response);
    expect(body.code).toBe("invalid_request");
    expect(body.detail).toMatch(/Method overrides .* are not accepted/);
    expect(seen).toEqual([]);
  });

  it("a builder's POST with X-HTTP-Method-Override: DELETE (an origin honouring it would run a DELETE)", async () => {
    const seen = fakeOrigin();
    const response = await gateway("/grids", {
      method: "POST",
      headers: {
        ...(await authorizationOf("builder@acme.example")),
        "Content-Type": "application/json",
        "X-HTTP-Method-Override": "DELETE",
      },
      body: "{}",
    });
    expect(response.status).toBe(400);
    expect(seen).toEqual([]);
  });

  it.each([
    "/grids?_method=DELETE",
    "/grids?page=2&_method=delete",
    "/grids?_Method=DELETE",
    "/grids?%5Fmethod=DELETE",
    "/grids?_m%65thod=DELETE",
    "/grids?.method=DELETE",
    "/grids?_method[]=DELETE",
  ])("a _method query parameter, however spelled: %s", async (path) => {
    const seen = fakeOrigin();
    const response = await gateway(path, {
      method: "POST",
      headers: { ...(await authorizationOf("builder@acme.example")), "Content-Type": "application/json" },
      body: "{}",
    });
    expect(response.status).toBe(400);
    expect((await problem(response)).detail).toMatch(/_method/);
    expect(seen).toEqual([]);
  });

  it("positive control: similar names and parameters still pass", async () => {
    const seen = fakeOrigin();
    const response = await gateway("/grids/a&_method=x?a_method=1&method=2", {
      headers: { ...(await authorizationOf("viewer@acme.example")), "X-HTTP-Methods": "x", "X-Method": "y" },
    });
    expect(response.status).toBe(200);
    expect(seen[0]!.url).toBe("https://origin.test/api/grids/a&_method=x?a_method=1&method=2");
    expect(seen[0]!.headers).toMatchObject({ "x-http-methods": "x", "x-method": "y" });
  });
});

describe("URL-override and forwarding headers", () => {
  it("strips URL overrides and client address claims; writes X-Forwarded-* and Forwarded from what the gateway knows", async () => {
    const seen = fakeOrigin();
    const response = await gateway("/grids/1?full=1", {
      headers: {
        ...(await authorizationOf("architect@acme.example")),
        Accept: "application/json",
        "X-Custom": "kept",
        "CF-Connecting-IP": "203.0.113.7",
        "X-Original-URL": "/members",
        "X-Rewrite-URL": "/members",
        X_Original_URL: "/members",
        "X-Original-URI": "/members",
        Forwarded: "for=10.0.0.1;host=evil.example;proto=http",
        "X-Forwarded-For": "10.0.0.1, 127.0.0.1",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "http",
        X_Forwarded_Port: "80",
        "X-Forwarded-Prefix": "/admin",
        "X-Real-IP": "127.0.0.1",
        "True-Client-IP": "127.0.0.1",
        "X-Client-IP": "127.0.0.1",
      },
    });
    expect(response.status).toBe(200);
    const { headers, url } = seen[0]!;
    expect(url).toBe("https://origin.test/api/grids/1?full=1");
    expect(headers).toMatchObject({
      accept: "application/json",
      "x-custom": "kept",
      "x-forwarded-for": "203.0.113.7",
      "x-forwarded-proto": "https",
      "x-forwarded-host": "gateway.test",
      forwarded: "for=203.0.113.7;host=gateway.test;proto=https",
    });
    const names = Object.keys(headers);
    for (const gone of [
      "x-original-url",
      "x-rewrite-url",
      "x_original_url",
      "x-original-uri",
      "x_forwarded_port",
      "x-forwarded-prefix",
      "x-real-ip",
      "true-client-ip",
      "x-client-ip",
    ]) {
      expect(names).not.toContain(gone);
    }
    expect(names.filter((name) => /forward/i.test(name)).sort()).toEqual(
      ["forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"].sort(),
    );
  });

  it("quotes an IPv6 client in Forwarded, and a host with a port", async () => {
    const seen = fakeOrigin();
    const ctx = createExecutionContext();
    const request = new Request("http://gateway.test:8443/grids", {
      headers: { ...(await authorizationOf("architect@acme.example")), "CF-Connecting-IP": "2001:db8::7" },
    });
    expect((await worker.fetch(request, env, ctx)).status).toBe(200);
    await waitOnExecutionContext(ctx);
    expect(seen[0]!.headers).toMatchObject({
      "x-forwarded-for": "2001:db8::7",
      "x-forwarded-proto": "http",
      "x-forwarded-host": "gateway.test:8443",
      forwarded: 'for="[2001:db8::7]";host="gateway.test:8443";proto=http',
    });
  });

  it.each([[undefined], ["not an address"], ["1.2.3.4, 5.6.7.8"], ['1.2.3.4";by="x']])(
    "claims no client address when CF-Connecting-IP is %j, and still drops the client's",
    async (ip) => {
      const seen = fakeOrigin();
      const response = await gateway("/grids", {
        headers: {
          ...(await authorizationOf("architect@acme.example")),
          ...(ip === undefined ? {} : { "CF-Connecting-IP": ip }),
          "X-Forwarded-For": "10.9.9.9",
          Forwarded: "for=10.9.9.9",
        },
      });
      expect(response.status).toBe(200);
      const { headers } = seen[0]!;
      expect(headers["x-forwarded-for"]).toBeUndefined();
      expect(headers.forwarded).toBe("host=gateway.test;proto=https");
      expect(JSON.stringify(headers)).not.toContain("10.9.9.9");
    },
  );
});

describe("Connection-named headers", () => {
  it("drops what Connection names when the runtime shows Connection to the Worker (in-process calls, this harness)", async () => {
    const seen = fakeOrigin();
    const response = await gateway("/grids", {
      headers: {
        ...(await authorizationOf("architect@acme.example")),
        Connection: "x-secret-hop",
        "X-Secret-Hop": "leak",
        "X-Kept": "yes",
      },
    });
    expect(response.status).toBe(200);
    expect(seen[0]!.headers["x-secret-hop"]).toBeUndefined();
    expect(seen[0]!.headers["connection"]).toBeUndefined();
    expect(seen[0]!.headers["x-kept"]).toBe("yes");
  });

  it("can never remove a header the gateway sets: they are written after the client's are filtered", async () => {
    const seen = fakeOrigin();
    const response = await gateway("/grids", {
      headers: {
        ...(await authorizationOf("architect@acme.example")),
        "CF-Connecting-IP": "198.51.100.4",
        Connection: "X-Forwarded-For, Forwarded, X-Gateway-Assertion, X-Request-Id, X-Member-Entity-Identifier",
      },
    });
    expect(response.status).toBe(200);
    const { headers } = seen[0]!;
    expect(headers).toMatchObject({
      "x-forwarded-for": "198.51.100.4",
      forwarded: "for=198.51.100.4;host=gateway.test;proto=https",
      "x-request-id": response.headers.get("X-Request-Id"),
      "x-member-entity-identifier": "o6q2is",
    });
    expect(headers["x-gateway-assertion"]).toMatch(/^ey/);
  });
});

it("positive control: an ordinary request is forwarded with its ordinary headers", async () => {
  const seen = fakeOrigin();
  const response = await gateway("/grids/12/cells?page=2", {
    headers: {
      ...(await authorizationOf("viewer@acme.example")),
      Accept: "application/json",
      "Accept-Language": "en",
      "If-None-Match": '"abc"',
      "User-Agent": "test-client/1.0",
      "X-Correlation-Id": "c-1",
    },
  });
  expect(response.status).toBe(200);
  expect(seen[0]!.url).toBe(`https://origin.test/api/grids/12/cells?page=2`);
  expect(seen[0]!.headers).toMatchObject({
    accept: "application/json",
    "accept-language": "en",
    "if-none-match": '"abc"',
    "user-agent": "test-client/1.0",
    "x-correlation-id": "c-1",
  });
  expect(GATEWAY).toBe("https://gateway.test");
});

describe("client headers by name", () => {
  it("headers named like Object.prototype's members reach the origin as sent (the outbound headers have no prototype)", async () => {
    const seen = fakeOrigin();
    const response = await gateway("/grids", {
      headers: [
        ...Object.entries(await authorizationOf("viewer@acme.example")),
        ["__proto__", "a"],
        ["constructor", "b"],
      ],
    });
    expect(response.status).toBe(200);
    expect(seen[0]!.headers["__proto__"]).toBe("a");
    expect(seen[0]!.headers.constructor).toBe("b");
  });
});
