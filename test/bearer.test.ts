// Bearer verification through the HTTP surface: every refusal is a 401 and reaches no origin.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  accessTokenFor,
  b64url,
  fakeOrigin,
  fixedClaims,
  gateway,
  now,
  problem,
  rawToken,
  signWithJose,
  type OriginSeen,
} from "./helpers";

let seen: OriginSeen[];
beforeEach(() => {
  seen = fakeOrigin();
});
afterEach(() => {
  expect(seen, "a refused request reached the origin").toEqual([]);
  vi.restoreAllMocks();
});

const HS256 = JSON.stringify({ alg: "HS256", typ: "JWT" });

async function expect401(response: Response, code: string, challenge: RegExp): Promise<Record<string, any>> {
  expect(response.status).toBe(401);
  expect(response.headers.get("WWW-Authenticate")).toMatch(challenge);
  const body = await problem(response);
  expect(body.code).toBe(code);
  expect(JSON.stringify(body)).not.toMatch(/at .*\(|stack/i);
  return body;
}

const INVALID_TOKEN = /^Bearer realm="api", error="invalid_token", error_description="[^"]*"$/;

async function expectInvalidToken(token: string, detail?: RegExp): Promise<void> {
  const body = await expect401(
    await gateway("/grids", { headers: { Authorization: `Bearer ${token}` } }),
    "invalid_token",
    INVALID_TOKEN,
  );
  if (detail) expect(body.detail).toMatch(detail);
}

describe("presenting credentials", () => {
  it("401 without a token, with a bare challenge", async () => {
    await expect401(await gateway("/grids"), "missing_token", /^Bearer realm="api"$/);
  });

  it("401 for Basic, with a body saying Basic is not supported", async () => {
    const body = await expect401(
      await gateway("/grids", {
        headers: { Authorization: `Basic ${btoa("architect@acme.example:gridgate-dev-password")}` },
      }),
      "basic_not_supported",
      /^Bearer realm="api"$/,
    );
    expect(body.detail).toMatch(/Basic authentication is not supported/);
  });

  it("401 for other schemes and for tokens in the query string or a cookie", async () => {
    const token = await accessTokenFor("architect@acme.example");
    await expect401(
      await gateway("/grids", { headers: { Authorization: `Digest ${token}` } }),
      "missing_token",
      /^Bearer realm="api"$/,
    );
    const query = await expect401(
      await gateway(`/grids?access_token=${token}`),
      "missing_token",
      /^Bearer realm="api"$/,
    );
    expect(query.detail).toMatch(/query string or cookies/);
    await expect401(
      await gateway("/grids", { headers: { Cookie: `access_token=${token}` } }),
      "missing_token",
      /^Bearer realm="api"$/,
    );
  });

  it("401 for two Authorization headers, even with two valid tokens", async () => {
    const token = await accessTokenFor("architect@acme.example");
    const headers = new Headers();
    headers.append("Authorization", `Bearer ${token}`);
    headers.append("Authorization", `Bearer ${token}`);
    await expect401(await gateway("/grids", { headers }), "invalid_token", INVALID_TOKEN);
  });

  it("accepts the scheme in any case", async () => {
    const token = await accessTokenFor("architect@acme.example");
    for (const scheme of ["bearer", "BEARER", "bEaReR"]) {
      const response = await gateway("/grids", { headers: { Authorization: `${scheme} ${token}` } });
      expect(response.status).toBe(200);
    }
    expect(seen).toHaveLength(3);
    seen.length = 0;
  });
});

describe("token format", () => {
  it("refuses a tampered signature, payload or header", async () => {
    const token = await signWithJose(fixedClaims());
    const [h, p, s] = token.split(".") as [string, string, string];
    const flipped = (segment: string, at: number) =>
      segment.slice(0, at) + (segment[at] === "A" ? "B" : "A") + segment.slice(at + 1);
    await expectInvalidToken(`${h}.${p}.${flipped(s, 5)}`);
    await expectInvalidToken(`${h}.${b64url(JSON.stringify(fixedClaims({ scope: "architect organisation" })))}.${s}`);
    await expectInvalidToken(`${b64url(JSON.stringify({ alg: "HS256" }))}.${p}.${s}`);
  });

  it("refuses alg none, other algorithms and unsafe header parameters", async () => {
    const payload = JSON.stringify(fixedClaims());
    await expectInvalidToken(`${b64url('{"alg":"none"}')}.${b64url(payload)}.`);
    await expectInvalidToken(`${b64url('{"alg":"none"}')}.${b64url(payload)}.${"A".repeat(43)}`);
    for (const header of [
      { alg: "HS384" },
      { alg: "hs256" },
      { alg: "RS256" },
      { alg: "HS256", crit: ["exp"] },
      { alg: "HS256", jku: "https://evil.test/jwks" },
      { alg: "HS256", x5u: "https://evil.test/x5u" },
      { alg: "HS256", jwk: { kty: "oct", k: "AAAA" } },
      { alg: "HS256", kid: "unknown-kid" },
      { alg: "HS256", typ: "JOSE+JSON" },
    ]) {
      await expectInvalidToken(await rawToken(JSON.stringify(header), payload));
    }
  });

  it("refuses padded, non-canonical and non-compact encodings", async () => {
    const token = await signWithJose(fixedClaims());
    const [h, p, s] = token.split(".") as [string, string, string];
    const format = /not a compact JWS/;
    await expectInvalidToken(`${h}=.${p}.${s}`, format);
    await expectInvalidToken(`${h}.${p}.${s}=`, format);
    await expectInvalidToken(`${h}.+${p.slice(1)}.${s}`, format);
    await expectInvalidToken(`${h}.${p}.${s.slice(0, 20)}/${s.slice(21)}`, format);
    await expectInvalidToken(`${h}.${p}`, format);
    await expectInvalidToken(`${h}.${p}.${s}.${s}`, format);
    await expectInvalidToken(`${h}..${s}`, format);
    // Same bytes, different last character: unused trailing bits set.
    const last = s.at(-1)!;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const sibling = alphabet[alphabet.indexOf(last) ^ 1]!;
    await expectInvalidToken(`${h}.${p}.${s.slice(0, -1)}${sibling}`, /not canonical base64url/);
  });

  it("refuses payloads that are not a JSON object", async () => {
    for (const payload of ["[1,2]", '"text"', "null", "42", "{not json"]) {
      await expectInvalidToken(await rawToken(HS256, payload));
    }
  });
});

describe("claims", () => {
  it.each([
    ["no exp", { exp: undefined }],
    ["an expired exp", { exp: now() - 120 }],
    ["exp 1e400 (Infinity)", "1e400"],
    ["a fractional exp", { exp: now() + 600.5 }],
    ["a string exp", { exp: String(now() + 600) }],
    ["iat in the future", { iat: now() + 600 }],
    ["nbf in the future", { nbf: now() + 600 }],
    ["a wrong iss", { iss: "someone-else" }],
    ["no iss", { iss: undefined }],
    ["no jti", { jti: undefined }],
    ["an unknown secretType", { secretType: "shared" }],
    ["a numeric memberEntityIdentifier", { memberEntityIdentifier: 2549 }],
    ["a header-breaking identifier", { memberEntityIdentifier: "o6q2is\r\nX-Admin: 1" }],
    ["no organisationEntityIdentifier", { organisationEntityIdentifier: undefined }],
    ["an array scope", { scope: ["architect"] }],
    ["a memberEntityId with a letter", { memberEntityId: "2549a" }],
    ["a negative memberEntityId string", { memberEntityId: "-1" }],
    ["a negative memberEntityId", { memberEntityId: -1 }],
    ["an empty memberEntityId", { memberEntityId: "" }],
    ["a fractional memberEntityId", { memberEntityId: 1.5 }],
    ["a memberEntityId with a leading +", { memberEntityId: "+2549" }],
    ["a memberEntityId with a leading zero", { memberEntityId: "02549" }],
    ["a memberEntityId with spaces", { memberEntityId: " 2549" }],
    ["a memberEntityId in exponent form", { memberEntityId: "2.549e3" }],
    ["a memberEntityId past 2^53 - 1", { memberEntityId: "9007199254740992" }],
    ["a boolean memberEntityId", { memberEntityId: true }],
  ])("refuses %s", async (_name, change) => {
    const payload =
      change === "1e400"
        ? JSON.stringify(fixedClaims({ exp: 0 })).replace('"exp":0', '"exp":1e400')
        : JSON.stringify(fixedClaims(change as Record<string, unknown>));
    await expectInvalidToken(await rawToken(HS256, payload));
  });

  it("allows CLOCK_SKEW leeway on exp and iat", async () => {
    const token = await signWithJose(fixedClaims({ exp: now() - 10, iat: now() + 10 }));
    expect((await gateway("/grids", { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
    expect(seen).toHaveLength(1);
    seen.length = 0;
  });

  it("refuses a token signed with an unknown secret", async () => {
    await expectInvalidToken(await signWithJose(fixedClaims(), "an-unknown-secret-that-is-long-enough-000000"));
  });

  it("refuses a token of over 8 KiB before decoding it", async () => {
    await expectInvalidToken(await signWithJose(fixedClaims({ pad: "x".repeat(9000) })));
  });
});
