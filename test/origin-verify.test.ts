// The origin integration example (examples/origin-verify) accepts exactly what the gateway really forwards, for each
// assertion algorithm, verifying by the gateway's JWKS (or HS256 secret), and refuses forged assertions.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { createRemoteJWKSet, customFetch, importPKCS8, SignJWT, type JWTVerifyGetKey } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { hs256Kid, verifyGatewayAssertion, type VerifyOptions } from "../examples/origin-verify/verify-assertion";
import worker from "../src/index";
import { b64url, fakeOrigin, fixedClaims, GATEWAY, ORIGIN, signWithJose } from "./helpers";

afterEach(() => vi.restoreAllMocks());

const ALGORITHMS = ["EdDSA", "ES256", "HS256"] as const;

/** The gateway under the test configuration with `ASSERTION_ALG` = `alg`. */
function gatewayEnv(alg: string): typeof env {
  return { ...env, ASSERTION_ALG: alg };
}

async function send(bindings: typeof env, path: string, init?: RequestInit): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await worker.fetch(new Request(GATEWAY + path, init), bindings, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

/** What an origin knows when it verifies as docs/origin-integration.md says: the JWKS URL, the secret for HS256. */
function originOptions(bindings: typeof env): VerifyOptions {
  const jwks = createRemoteJWKSet(new URL(`${GATEWAY}/.well-known/jwks.json`), {
    cacheMaxAge: 300_000,
    [customFetch]: (url: string, init: RequestInit) => send(bindings, new URL(url).pathname, init),
  });
  return { jwks, secrets: bindings.ASSERTION_ALG === "HS256" ? [bindings.ASSERTION_SECRET!] : undefined };
}

/** Sends `path` through the gateway; returns the response and the request as the origin received it. */
async function forwarded(bindings: typeof env, path: string): Promise<{ response: Response; request: Request }> {
  const seen = fakeOrigin();
  const token = await signWithJose(fixedClaims());
  const response = await send(bindings, path, {
    headers: { Authorization: `Bearer ${token}`, "X-Member-Entity-Identifier": "forged" },
  });
  expect(response.status).toBe(200);
  expect(seen).toHaveLength(1);
  vi.restoreAllMocks();
  const { method, url, headers } = seen[0]!;
  return { response, request: new Request(url, { method, headers }) };
}

describe.each(ALGORITHMS)("ASSERTION_ALG=%s", (alg) => {
  it("verifies a real forwarded request, and refuses it replayed elsewhere, with forged headers or another key", async () => {
    const bindings = gatewayEnv(alg);
    const options = originOptions(bindings);
    const { response, request } = await forwarded(bindings, "/grids/12/cells?view=full");
    expect(request.url).toBe(`${ORIGIN}/grids/12/cells?view=full`);
    expect(request.headers.get("x-member-entity-identifier")).toBe("o6q2is");
    const header = JSON.parse(atob(request.headers.get("x-gateway-assertion")!.split(".")[0]!));
    expect(header.alg).toBe(alg);
    expect(header.kid).toMatch(alg === "HS256" ? /^[A-Za-z0-9_-]{12}$/ : /^[A-Za-z0-9_-]{43}$/);

    const identity = await verifyGatewayAssertion(request, options);
    expect(identity).toMatchObject({
      memberEntityId: 2549,
      memberEntityIdentifier: "o6q2is",
      organisationEntityIdentifier: "m7l9hw",
      scope: ["architect"],
      secretType: "fixed",
    });
    expect(identity.requestId).toBe(response.headers.get("X-Request-Id"));

    await expect(
      verifyGatewayAssertion(new Request(request.url.replace("/12/", "/13/"), request), options),
    ).rejects.toThrow("another request");
    await expect(verifyGatewayAssertion(new Request(request, { method: "DELETE" }), options)).rejects.toThrow(
      "another request",
    );
    const forged = new Headers(request.headers);
    forged.set("X-Organisation-Entity-Identifier", "q1w2e3");
    await expect(verifyGatewayAssertion(new Request(request.url, { headers: forged }), options)).rejects.toThrow(
      "identity headers",
    );
  });

  it("the assertion binds exactly the documented claims, for 60 s", async () => {
    const bindings = gatewayEnv(alg);
    const { request } = await forwarded(bindings, "/grids/7?full=1");
    const payload = JSON.parse(
      atob(request.headers.get("x-gateway-assertion")!.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")),
    );
    expect(Object.keys(payload).sort()).toEqual(
      [
        "aud",
        "exp",
        "iat",
        "iss",
        "jti",
        "memberEntityId",
        "memberEntityIdentifier",
        "method",
        "organisationEntityIdentifier",
        "path",
        "scope",
        "secretType",
        "tokenId",
      ].sort(),
    );
    expect(payload).toMatchObject({
      iss: "gridgate",
      aud: "origin",
      method: "GET",
      path: "/api/grids/7?full=1",
      jti: request.headers.get("x-request-id"),
      tokenId: request.headers.get("x-auth-token-id"),
    });
    expect(payload.exp - payload.iat).toBe(60);
  });
});

/** The gateway's own Ed25519 key (the first of ASSERTION_KEYS in vitest.config.ts), as a forger who stole it would use it. */
async function gatewayEd25519Key(): Promise<CryptoKey> {
  const der = Uint8Array.fromBase64(env.ASSERTION_KEYS!.split(",")[0]!, { alphabet: "base64url" });
  const pem = `-----BEGIN PRIVATE KEY-----\n${der.toBase64()}\n-----END PRIVATE KEY-----`;
  return importPKCS8(pem, "EdDSA");
}

describe("forged assertions are refused by the example", () => {
  /** A forwarded request whose assertion is replaced by `forge(claims, header)`. */
  async function withForgedAssertion(
    forge: (claims: Record<string, unknown>, header: Record<string, string>) => Promise<string>,
  ): Promise<{ request: Request; forgedRequest: Request; options: VerifyOptions; jwks: JWTVerifyGetKey }> {
    const bindings = gatewayEnv("EdDSA");
    const options = originOptions(bindings);
    const { request } = await forwarded(bindings, "/grids/1");
    const [encodedHeader, encodedClaims] = request.headers.get("x-gateway-assertion")!.split(".") as [string, string];
    const decode = (part: string) =>
      JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(part, { alphabet: "base64url" })));
    const headers = new Headers(request.headers);
    headers.set("X-Gateway-Assertion", await forge(decode(encodedClaims), decode(encodedHeader)));
    return { request, forgedRequest: new Request(request.url, { headers }), options, jwks: options.jwks! };
  }

  const sign = (claims: Record<string, unknown>, header: Record<string, string>, key: CryptoKey | Uint8Array) =>
    new SignJWT(claims).setProtectedHeader(header as never).sign(key);

  it("the control: the gateway's own key with its own kid passes", async () => {
    const key = await gatewayEd25519Key();
    const { forgedRequest, options } = await withForgedAssertion((claims, header) => sign(claims, header, key));
    await expect(verifyGatewayAssertion(forgedRequest, options)).resolves.toMatchObject({
      memberEntityIdentifier: "o6q2is",
    });
  });

  it("a key not in the JWKS, under the published kid or its own", async () => {
    const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"])) as CryptoKeyPair;
    for (const kid of [undefined, "a-key-of-its-own"]) {
      const { forgedRequest, options } = await withForgedAssertion((claims, header) =>
        sign(claims, { ...header, ...(kid ? { kid } : {}) }, pair.privateKey),
      );
      await expect(verifyGatewayAssertion(forgedRequest, options), kid).rejects.toThrow();
    }
  });

  it("alg: none", async () => {
    const { forgedRequest, options } = await withForgedAssertion(async (claims, header) =>
      [b64url(JSON.stringify({ ...header, alg: "none" })), b64url(JSON.stringify(claims)), ""].join("."),
    );
    await expect(verifyGatewayAssertion(forgedRequest, options)).rejects.toThrow();
  });

  it("HS256 signed with the public key's bytes, also where the origin holds an HS256 secret", async () => {
    const { keys } = (await (await send(env, "/.well-known/jwks.json")).json()) as { keys: Record<string, string>[] };
    const published = keys[0]!;
    const publicForms = [
      Uint8Array.fromBase64(published.x!, { alphabet: "base64url" }),
      new TextEncoder().encode(published.x!),
      new TextEncoder().encode(JSON.stringify(published)),
    ];
    for (const secret of publicForms) {
      const { forgedRequest, options } = await withForgedAssertion((claims, header) =>
        sign(claims, { ...header, alg: "HS256" }, secret),
      );
      await expect(verifyGatewayAssertion(forgedRequest, options)).rejects.toThrow();
      const migrating = { ...options, secrets: [env.ASSERTION_SECRET!] };
      await expect(verifyGatewayAssertion(forgedRequest, migrating)).rejects.toThrow();
    }
    // and under the kid of the origin's real HS256 secret: the signature does not verify
    const { forgedRequest, options } = await withForgedAssertion(async (claims, header) =>
      sign(claims, { ...header, alg: "HS256", kid: await hs256Kid(env.ASSERTION_SECRET!) }, publicForms[0]!),
    );
    await expect(
      verifyGatewayAssertion(forgedRequest, { ...options, secrets: [env.ASSERTION_SECRET!] }),
    ).rejects.toThrow();
  });

  it("the gateway's own key under another kid, or another key's kid", async () => {
    const key = await gatewayEd25519Key();
    const { keys } = (await (await send(env, "/.well-known/jwks.json")).json()) as { keys: { kid: string }[] };
    for (const kid of ["another-kid", keys[1]!.kid, ""]) {
      const { forgedRequest, options } = await withForgedAssertion((claims, header) =>
        sign(claims, { ...header, kid }, key),
      );
      await expect(verifyGatewayAssertion(forgedRequest, options), kid).rejects.toThrow();
    }
  });

  it("HS256 with a secret the origin does not hold", async () => {
    const { forgedRequest, options } = await withForgedAssertion((claims, header) =>
      sign(
        claims,
        { ...header, alg: "HS256", kid: "x" },
        new TextEncoder().encode("another-secret-0123456789abcdef0123456789"),
      ),
    );
    await expect(
      verifyGatewayAssertion(forgedRequest, { ...options, secrets: [env.ASSERTION_SECRET!] }),
    ).rejects.toThrow("no ASSERTION_SECRET with this kid");
  });
});
