// GET /.well-known/jwks.json: the public keys of X-Gateway-Assertion, cacheable with an ETag, never private or symmetric material.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../src/index";
import { fakeOrigin, fixedClaims, GATEWAY, gateway, newAssertionKey, problem, signWithJose } from "./helpers";

afterEach(() => vi.restoreAllMocks());

/** The gateway's answer to `path` under the test configuration with `vars` changed. */
async function withEnv(vars: Record<string, string | undefined>, path: string, init?: RequestInit): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await worker.fetch(new Request(GATEWAY + path, init), { ...env, ...vars }, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

async function thumbprint(members: Record<string, string>): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(JSON.stringify(members)));
  return new Uint8Array(digest).toBase64({ alphabet: "base64url", omitPadding: true });
}

describe("GET /.well-known/jwks.json", () => {
  it("lists every ASSERTION_KEYS public key, each named by its RFC 7638 thumbprint; public, cacheable, no token", async () => {
    const seen = fakeOrigin();
    const response = await gateway("/.well-known/jwks.json");
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toBe("application/jwk-set+json");
    expect(response.headers.get("Cache-Control")).toBe("public, max-age=300");
    expect(response.headers.get("ETag")).toMatch(/^"[A-Za-z0-9_-]{22}"$/);
    const { keys } = (await response.json()) as { keys: Record<string, string>[] };
    expect(keys.map((key) => [key.kty, key.crv, key.alg, key.use])).toEqual([
      ["OKP", "Ed25519", "EdDSA", "sig"],
      ["EC", "P-256", "ES256", "sig"],
    ]);
    const [ed, ec] = keys as [Record<string, string>, Record<string, string>];
    expect(ed.kid).toBe(await thumbprint({ crv: ed.crv!, kty: ed.kty!, x: ed.x! }));
    expect(ec.kid).toBe(await thumbprint({ crv: ec.crv!, kty: ec.kty!, x: ec.x!, y: ec.y! }));
    expect(seen).toHaveLength(0);
  });

  it("never holds private or symmetric material, with every kind of key configured and whichever signs", async () => {
    const ed = await newAssertionKey("EdDSA");
    const ec = await newAssertionKey("ES256");
    const secret = "jwks-test-assertion-secret-0123456789abcdef0123";
    for (const ASSERTION_ALG of ["EdDSA", "ES256", "HS256"]) {
      const response = await withEnv(
        { ASSERTION_ALG, ASSERTION_KEYS: `${ed.pkcs8},${ec.pkcs8}`, ASSERTION_SECRET: secret },
        "/.well-known/jwks.json",
      );
      expect(response.status).toBe(200);
      const text = await response.text();
      const { keys } = JSON.parse(text) as { keys: Record<string, string>[] };
      expect(keys.map((key) => Object.keys(key).sort())).toEqual([
        ["alg", "crv", "kid", "kty", "use", "x"],
        ["alg", "crv", "kid", "kty", "use", "x", "y"],
      ]);
      expect(keys.map((key) => key.x)).toEqual([ed.jwk.x, ec.jwk.x]);
      for (const material of [ed.jwk.d!, ec.jwk.d!, ed.pkcs8, ec.pkcs8, secret])
        expect(text, ASSERTION_ALG).not.toContain(material);
      expect(text).not.toMatch(/"(d|k|p|q|dp|dq|qi|oth)"/);
      expect(text).not.toContain(new TextEncoder().encode(secret).toBase64({ alphabet: "base64url" }).slice(0, 20));
    }
  });

  it("HS256 with no ASSERTION_KEYS: an empty set", async () => {
    const response = await withEnv({ ASSERTION_ALG: "HS256", ASSERTION_KEYS: undefined }, "/.well-known/jwks.json");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ keys: [] });
  });

  it("lists a key once however often ASSERTION_KEYS names it, in ASSERTION_KEYS's order", async () => {
    const first = await newAssertionKey("EdDSA");
    const second = await newAssertionKey("EdDSA");
    const response = await withEnv(
      { ASSERTION_KEYS: `${second.pkcs8},${first.pkcs8},${second.pkcs8}` },
      "/.well-known/jwks.json",
    );
    const { keys } = (await response.json()) as { keys: { x: string }[] };
    expect(keys.map((key) => key.x)).toEqual([second.jwk.x, first.jwk.x]);
  });

  it("If-None-Match with its ETag (or W/, in a list, or *) → 304 without a body; another ETag → 200", async () => {
    const etag = (await gateway("/.well-known/jwks.json")).headers.get("ETag")!;
    for (const ifNoneMatch of [etag, `W/${etag}`, `"other", ${etag}`, "*"]) {
      const response = await gateway("/.well-known/jwks.json", { headers: { "If-None-Match": ifNoneMatch } });
      expect(response.status, ifNoneMatch).toBe(304);
      expect(await response.text()).toBe("");
      expect(response.headers.get("ETag")).toBe(etag);
      expect(response.headers.get("Cache-Control")).toBe("public, max-age=300");
    }
    const changed = await gateway("/.well-known/jwks.json", { headers: { "If-None-Match": '"other"' } });
    expect(changed.status).toBe(200);
  });

  it("the ETag is the same for the same keys in any isolate, and changes with them", async () => {
    const etagOf = async (vars: Record<string, string>) =>
      (await withEnv(vars, "/.well-known/jwks.json")).headers.get("ETag");
    const key = await newAssertionKey("EdDSA");
    expect(await etagOf({ ASSERTION_KEYS: key.pkcs8 })).toBe(await etagOf({ ASSERTION_KEYS: key.pkcs8 }));
    expect(await etagOf({ ASSERTION_KEYS: key.pkcs8 })).not.toBe(await etagOf({}));
  });

  it("HEAD: the headers without a body; other methods 405", async () => {
    const head = await gateway("/.well-known/jwks.json", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("ETag")).toMatch(/^"/);
    expect(await head.text()).toBe("");
    const post = await gateway("/.well-known/jwks.json", { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("Allow")).toBe("GET, HEAD");
  });

  it("the gateway owns /.well-known/ in any spelling: other paths 404, never forwarded", async () => {
    const seen = fakeOrigin();
    for (const path of ["/.well-known/openid-configuration", "/.WELL-KNOWN/jwks.json", "/%2Ewell-known/x"]) {
      const response = await gateway(path, { headers: { Authorization: "Bearer x" } });
      expect(response.status, path).toBe(404);
      expect((await problem(response)).code).toBe("not_found");
    }
    expect((await gateway("/%2Ewell-known/jwks.json")).status).toBe(200);
    expect(seen).toHaveLength(0);
  });
});

describe("assertion key configuration", () => {
  it.each([
    ["an unknown ASSERTION_ALG", { ASSERTION_ALG: "RS256" }, "ASSERTION_ALG must be one of EdDSA, ES256, HS256"],
    ["ES256 without a P-256 key", { ASSERTION_ALG: "ES256", ASSERTION_KEYS: "ED25519" }, "holds no P-256 private key"],
    ["EdDSA without ASSERTION_KEYS", { ASSERTION_KEYS: undefined }, "holds no Ed25519 private key"],
    ["ASSERTION_KEYS not base64", { ASSERTION_KEYS: "not a key!" }, "ASSERTION_KEYS key 1 is not an Ed25519 or P-256"],
    ["an RSA key", { ASSERTION_KEYS: "RSA" }, "ASSERTION_KEYS key 1 is not an Ed25519 or P-256"],
    [
      "a broken Ed25519 key",
      { ASSERTION_KEYS: "MC4CAQAwBQYDK2VwBCIEIA" },
      "ASSERTION_KEYS key 1 could not be imported",
    ],
    [
      "HS256 without ASSERTION_SECRET",
      { ASSERTION_ALG: "HS256", ASSERTION_SECRET: undefined },
      "ASSERTION_SECRET must be set",
    ],
    [
      "HS256 with a short ASSERTION_SECRET",
      { ASSERTION_ALG: "HS256", ASSERTION_SECRET: "short" },
      "ASSERTION_SECRET must be set",
    ],
  ])(
    "%s: the JWKS and every proxied request answer an opaque 500, and the log says why",
    async (_name, vars, logged) => {
      const standIn = async (value: string | undefined) => {
        if (value === "ED25519") return (await newAssertionKey("EdDSA")).pkcs8;
        if (value !== "RSA") return value;
        const rsa = (await crypto.subtle.generateKey(
          {
            name: "RSASSA-PKCS1-v1_5",
            modulusLength: 2048,
            publicExponent: new Uint8Array([1, 0, 1]),
            hash: "SHA-256",
          },
          true,
          ["sign"],
        )) as CryptoKeyPair;
        return new Uint8Array((await crypto.subtle.exportKey("pkcs8", rsa.privateKey)) as ArrayBuffer).toBase64();
      };
      const substituted: Record<string, string | undefined> = {};
      for (const [name, value] of Object.entries(vars)) substituted[name] = await standIn(value);
      const error = vi.spyOn(console, "error").mockImplementation(() => {});
      const seen = fakeOrigin();
      const token = await signWithJose(fixedClaims());
      for (const path of ["/.well-known/jwks.json", "/grids"]) {
        const response = await withEnv(substituted, path, { headers: { Authorization: `Bearer ${token}` } });
        expect(response.status, path).toBe(500);
        expect((await problem(response)).code).toBe("internal");
      }
      expect(error).toHaveBeenCalledWith(expect.stringContaining(logged));
      expect(seen).toHaveLength(0);
    },
  );

  it("accepts PEM blocks and standard base64 as well as base64url", async () => {
    const key = await newAssertionKey("ES256");
    const base64 = Uint8Array.fromBase64(key.pkcs8, { alphabet: "base64url" }).toBase64();
    const pem = `-----BEGIN PRIVATE KEY-----\n${base64.match(/.{1,64}/g)!.join("\n")}\n-----END PRIVATE KEY-----\n`;
    for (const ASSERTION_KEYS of [base64, pem, ` ${key.pkcs8} `]) {
      const response = await withEnv({ ASSERTION_ALG: "ES256", ASSERTION_KEYS }, "/.well-known/jwks.json");
      expect(response.status).toBe(200);
      expect(((await response.json()) as { keys: { x: string }[] }).keys.map((jwk) => jwk.x)).toEqual([key.jwk.x]);
    }
  });
});
