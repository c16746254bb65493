// Rotation of the fixed secret: issued tokens carry the secret's kid, JWT_SECRET_PREVIOUS still verifies.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { accessTokenFor, fakeOrigin, fixedClaims, gateway, signWithJose } from "./helpers";

afterEach(() => vi.restoreAllMocks());

const UNKNOWN_SECRET = "an-unknown-secret-of-sufficient-length-0123456789";

/** The documented kid derivation, computed independently: base64url of the first 9 bytes of HMAC-SHA256(secret, label). */
async function kidOf(secret: string): Promise<string> {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode("gridgate fixed-secret key id")));
  return mac.subarray(0, 9).toBase64({ alphabet: "base64url", omitPadding: true });
}

function headerOf(token: string): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(token.split(".")[0]!, { alphabet: "base64url" })));
}

function getGrids(token: string): Promise<Response> {
  return gateway("/grids", { headers: { Authorization: `Bearer ${token}` } });
}

describe("fixed secret key ids", () => {
  it("are derived from the secret and stamped on every token the gateway issues", async () => {
    const current = await kidOf(env.JWT_SECRET!);
    expect(current).toMatch(/^[A-Za-z0-9_-]{12}$/);
    expect(current).not.toBe(await kidOf(env.JWT_SECRET_PREVIOUS!));
    expect(headerOf(await accessTokenFor("architect@acme.example"))).toEqual({
      alg: "HS256",
      typ: "JWT",
      kid: current,
    });
  });
});

describe("rotation with JWT_SECRET_PREVIOUS", () => {
  it("accepts tokens signed with the previous secret, with its kid or without one", async () => {
    const seen = fakeOrigin();
    const previous = env.JWT_SECRET_PREVIOUS!;
    expect((await getGrids(await signWithJose(fixedClaims(), previous, { kid: await kidOf(previous) }))).status).toBe(
      200,
    );
    expect((await getGrids(await signWithJose(fixedClaims(), previous))).status).toBe(200);
    expect(seen).toHaveLength(2);
    expect(seen[0]!.headers["x-auth-secret-type"]).toBe("fixed");
  });

  it("still accepts the current secret, with its kid or without one", async () => {
    fakeOrigin();
    expect(
      (await getGrids(await signWithJose(fixedClaims(), env.JWT_SECRET!, { kid: await kidOf(env.JWT_SECRET!) })))
        .status,
    ).toBe(200);
    expect((await getGrids(await signWithJose(fixedClaims()))).status).toBe(200);
  });

  it("refuses a kid that names no configured secret, even on a correctly signed token", async () => {
    const seen = fakeOrigin();
    for (const kid of [await kidOf(UNKNOWN_SECRET), "gridgate-1"]) {
      const response = await getGrids(await signWithJose(fixedClaims(), env.JWT_SECRET!, { kid }));
      expect(response.status).toBe(401);
      expect(response.headers.get("WWW-Authenticate")).toContain('error="invalid_token"');
    }
    expect(seen).toHaveLength(0);
  });

  it("refuses a token signed by an unknown secret, whatever kid it claims", async () => {
    const seen = fakeOrigin();
    const kids = [
      undefined,
      await kidOf(UNKNOWN_SECRET),
      await kidOf(env.JWT_SECRET!),
      await kidOf(env.JWT_SECRET_PREVIOUS!),
    ];
    for (const kid of kids) {
      const token = await signWithJose(fixedClaims(), UNKNOWN_SECRET, kid ? { kid } : {});
      expect((await getGrids(token)).status, `kid ${kid}`).toBe(401);
    }
    expect(seen).toHaveLength(0);
  });

  it("refuses the previous secret under the current secret's kid, and the reverse", async () => {
    fakeOrigin();
    const current = env.JWT_SECRET!;
    const previous = env.JWT_SECRET_PREVIOUS!;
    expect((await getGrids(await signWithJose(fixedClaims(), previous, { kid: await kidOf(current) }))).status).toBe(
      401,
    );
    expect((await getGrids(await signWithJose(fixedClaims(), current, { kid: await kidOf(previous) }))).status).toBe(
      401,
    );
  });
});
