// Tokens as the API documentation shows them: memberEntityId as a digit string, the documented header and payload.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { accessTokenFor, bearer, fakeOrigin, fixedClaims, gateway, problem, rawToken, signWithJose } from "./helpers";

afterEach(() => vi.restoreAllMocks());

/** The documentation's example payload, verbatim: nine claims, `iat` in the past, no `exp`. */
const DOCUMENTED_PAYLOAD = {
  iat: 1586594518,
  iss: "ServerTest",
  jti: "qvdixb",
  memberEntityId: "2549",
  memberEntityIdentifier: "o6q2is",
  organisationEntityIdentifier: "m7l9hw",
  scope: "architect",
  secretType: "dynamic",
};

function decodeSegment(segment: string): string {
  return new TextDecoder().decode(Uint8Array.fromBase64(segment, { alphabet: "base64url" }));
}

/** The seeded architect's fixed-secret token, to manage the organisation's dynamic secrets. */
async function createSecret(): Promise<{ kid: string; secret: string }> {
  const token = await accessTokenFor("architect@acme.example");
  const response = await gateway("/authenticate/secrets", {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ label: "documented example" }),
  });
  expect(response.status, await response.clone().text()).toBe(201);
  return response.json();
}

/** Signs exactly `payload` (its JSON text as given) with the documented header order. */
function signDocumented(payload: object, secret: string, kid?: string): Promise<string> {
  const header = JSON.stringify({ typ: "JWT", alg: "HS256", ...(kid ? { kid } : {}) });
  return rawToken(header, JSON.stringify(payload), secret);
}

describe("tokens the gateway issues", () => {
  it("carry the header {typ, alg, kid} in that order and memberEntityId as decimal digits", async () => {
    const token = await accessTokenFor("architect@acme.example");
    const [header, payload] = token.split(".");
    expect(Object.keys(JSON.parse(decodeSegment(header!)))).toEqual(["typ", "alg", "kid"]);
    expect(JSON.parse(decodeSegment(header!))).toMatchObject({ typ: "JWT", alg: "HS256" });
    expect(JSON.parse(decodeSegment(payload!)).memberEntityId).toBe("2549");
  });

  it("still forward X-Member-Entity-Id as digits, and still revoke everything with all: true", async () => {
    const seen = fakeOrigin();
    const token = await accessTokenFor("builder@acme.example");
    expect((await gateway("/grids", bearer(token))).status).toBe(200);
    const id = seen[0]!.headers["x-member-entity-id"];
    expect(id).toMatch(/^[1-9][0-9]*$/);
    const revoke = await gateway("/authenticate/revoke", {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ all: true }),
    });
    expect(revoke.status).toBe(200);
    // revoke-all keys by the numeric id, whichever spelling the token used
    expect(await env.TOKENS.get(`refresh-member:${id}`)).not.toBeNull();
  });
});

describe("memberEntityId in tokens presented to the gateway", () => {
  it.each([
    ["the digit string", "2549"],
    ["the integer", 2549],
    ["zero as a string", "0"],
  ])("accepts %s and forwards decimal digits", async (_name, memberEntityId) => {
    const seen = fakeOrigin();
    const response = await gateway("/grids", bearer(await signWithJose(fixedClaims({ memberEntityId }))));
    expect(response.status).toBe(200);
    expect(seen[0]!.headers["x-member-entity-id"]).toBe(String(memberEntityId));
  });

  it.each([["2549a"], ["-1"], [""], [1.5], ["+2549"], ["02549"], [-3], [null]])(
    "refuses %j",
    async (memberEntityId) => {
      const seen = fakeOrigin();
      const response = await gateway("/grids", bearer(await signWithJose(fixedClaims({ memberEntityId }))));
      expect(response.status).toBe(401);
      expect((await problem(response)).code).toBe("invalid_token");
      expect(response.headers.get("WWW-Authenticate")).toContain("memberEntityId must be");
      expect(seen).toHaveLength(0);
    },
  );
});

describe("the documentation's example payload, signed with a dynamic secret", () => {
  it.each([
    ["with kid", true],
    ["without kid", false],
  ])(
    "gets 200 through the gateway (%s, no exp) with the identity headers the origin expects",
    async (_name, withKid) => {
      const { kid, secret } = await createSecret();
      const seen = fakeOrigin();
      const token = await signDocumented(DOCUMENTED_PAYLOAD, secret, withKid ? kid : undefined);
      const [header, payload] = token.split(".");
      expect(decodeSegment(header!)).toBe(
        withKid ? `{"typ":"JWT","alg":"HS256","kid":"${kid}"}` : '{"typ":"JWT","alg":"HS256"}',
      );
      expect(JSON.parse(decodeSegment(payload!))).toEqual(DOCUMENTED_PAYLOAD);

      const response = await gateway("/grids", bearer(token));
      expect(response.status, await response.clone().text()).toBe(200);
      expect(seen).toHaveLength(1);
      expect(seen[0]!.headers).toMatchObject({
        "x-member-entity-id": "2549",
        "x-member-entity-identifier": "o6q2is",
        "x-organisation-entity-identifier": "m7l9hw",
        "x-auth-scope": "architect",
        "x-auth-token-id": "qvdixb",
        "x-auth-secret-type": "dynamic",
      });
      expect(seen[0]!.headers["authorization"]).toBeUndefined();
    },
  );

  it("is refused when its memberEntityId names another member of the organisation", async () => {
    const { kid, secret } = await createSecret();
    const seen = fakeOrigin();
    const token = await signDocumented({ ...DOCUMENTED_PAYLOAD, memberEntityId: "2550" }, secret, kid);
    const response = await gateway("/grids", bearer(token));
    expect(response.status).toBe(401);
    expect((await problem(response)).detail).toBe("memberEntityId does not match the member");
    expect(seen).toHaveLength(0);
  });
});
