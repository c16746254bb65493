// `aud` (RFC 7519 §4.1.3, RFC 8725 §3.9): a token meant for another recipient is refused, fixed or dynamic.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../src/index";
import { authorization, fakeOrigin, fixedClaims, GATEWAY, gateway, now, problem, signWithJose } from "./helpers";

afterEach(() => vi.restoreAllMocks());

/** The gateway with `overrides` on its configuration (a new env object is a new configuration). */
async function withEnv(overrides: Record<string, string>, path: string, token: string): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await worker.fetch(
    new Request(GATEWAY + path, { headers: authorization(token) }),
    { ...env, ...overrides },
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return response;
}

async function expectInvalidToken(response: Response, detail: RegExp): Promise<void> {
  expect(response.status).toBe(401);
  expect(response.headers.get("WWW-Authenticate")).toMatch(/error="invalid_token"/);
  const body = await problem(response);
  expect(body.code).toBe("invalid_token");
  expect(body.detail).toMatch(detail);
}

describe("fixed-secret tokens and aud", () => {
  it.each([
    ["origin"],
    [["origin"]],
    ["https://other.example"],
    [["https://other.example", "origin"]],
    ["Gridgate"],
    [[]],
  ])(
    "401 invalid_token for aud %j, which does not name this gateway, also for POST with architect scope",
    async (aud) => {
      const seen = fakeOrigin();
      const token = await signWithJose(fixedClaims({ aud }));
      await expectInvalidToken(await gateway("/grids", { headers: authorization(token) }), /another audience/);
      const post = await gateway("/grids", {
        method: "POST",
        headers: { ...authorization(token), "Content-Type": "application/json" },
        body: "{}",
      });
      expect(post.status).toBe(401);
      expect(seen).toEqual([]);
    },
  );

  it.each([[42], [null], [{ aud: "gridgate" }], [[1]], [["gridgate", 1]], [true]])(
    "401 invalid_token for aud %j, which is neither a string nor an array of strings",
    async (aud) => {
      const seen = fakeOrigin();
      const token = await signWithJose(fixedClaims({ aud }));
      await expectInvalidToken(
        await gateway("/grids", { headers: authorization(token) }),
        /aud must be a string or an array of strings/,
      );
      expect(seen).toEqual([]);
    },
  );

  it.each([[undefined], ["gridgate"], [["gridgate"]], [["https://other.example", "gridgate"]]])(
    "accepts aud %j (absent, or naming the gateway: AUDIENCE defaults to ISSUER)",
    async (aud) => {
      const seen = fakeOrigin();
      const token = await signWithJose(fixedClaims(aud === undefined ? {} : { aud }));
      expect((await gateway("/grids", { headers: authorization(token) })).status).toBe(200);
      expect(seen).toHaveLength(1);
    },
  );

  it("honours a configured AUDIENCE instead of the issuer", async () => {
    fakeOrigin();
    const AUDIENCE = "https://api.grids.example";
    const forApi = await signWithJose(fixedClaims({ aud: AUDIENCE }));
    const forIssuer = await signWithJose(fixedClaims({ aud: "gridgate" }));
    expect((await withEnv({ AUDIENCE }, "/grids", forApi)).status).toBe(200);
    await expectInvalidToken(await withEnv({ AUDIENCE }, "/grids", forIssuer), /another audience/);
    expect((await withEnv({ AUDIENCE }, "/grids", await signWithJose(fixedClaims()))).status).toBe(200);
  });

  it("re-checks aud for a token the verified-token cache already knows, when the audience changed", async () => {
    fakeOrigin();
    const token = await signWithJose(fixedClaims({ aud: "gridgate" }));
    expect((await gateway("/grids", { headers: authorization(token) })).status).toBe(200);
    await expectInvalidToken(
      await withEnv({ AUDIENCE: "https://api.grids.example" }, "/grids", token),
      /another audience/,
    );
    const other = await signWithJose(fixedClaims({ aud: "https://api.grids.example" }));
    expect((await withEnv({ AUDIENCE: "https://api.grids.example" }, "/grids", other)).status).toBe(200);
    await expectInvalidToken(await gateway("/grids", { headers: authorization(other) }), /another audience/);
  });
});

describe("dynamic-secret tokens and aud", () => {
  async function organisationWithSecret(): Promise<{
    identifier: string;
    member: string;
    secret: string;
    kid: string;
  }> {
    const identifier = `a${crypto.randomUUID().replaceAll("-", "").slice(0, 7)}`;
    const member = `m${crypto.randomUUID().replaceAll("-", "").slice(0, 7)}`;
    const org = await env.DB.prepare(
      "INSERT INTO organisations (identifier, name, domain, plan) VALUES (?, 'Audience', ?, 'enterprise') RETURNING id",
    )
      .bind(identifier, `${identifier}.example`)
      .first<{ id: number }>();
    const row = await env.DB.prepare(
      "INSERT INTO members (identifier, organisation_id, email, password_hash, role) VALUES (?, ?, ?, 'x', 'architect') RETURNING id",
    )
      .bind(member, org!.id, `${member}@${identifier}.example`)
      .first<{ id: number }>();
    const architect = await signWithJose(
      fixedClaims({
        organisationEntityIdentifier: identifier,
        memberEntityIdentifier: member,
        memberEntityId: row!.id,
      }),
    );
    const created = await gateway("/authenticate/secrets", { method: "POST", headers: authorization(architect) });
    expect(created.status, await created.clone().text()).toBe(201);
    const { kid, secret } = (await created.json()) as { kid: string; secret: string };
    return { identifier, member, secret, kid };
  }

  it("401 for a token the organisation signed for another of its services; accepted without aud or naming the gateway", async () => {
    const seen = fakeOrigin();
    const org = await organisationWithSecret();
    const dynamic = (extra: Record<string, unknown>) =>
      signWithJose(
        {
          iat: now(),
          memberEntityIdentifier: org.member,
          organisationEntityIdentifier: org.identifier,
          scope: "organisation",
          secretType: "dynamic",
          ...extra,
        },
        org.secret,
        { kid: org.kid },
      );
    for (const aud of ["origin", ["origin"], "https://billing.example"]) {
      await expectInvalidToken(
        await gateway("/grids", { headers: authorization(await dynamic({ aud })) }),
        /another audience/,
      );
    }
    await expectInvalidToken(
      await gateway("/grids", { headers: authorization(await dynamic({ aud: 7 })) }),
      /aud must be/,
    );
    expect(seen).toEqual([]);
    for (const extra of [{}, { aud: "gridgate" }, { aud: ["billing", "gridgate"] }])
      expect((await gateway("/grids", { headers: authorization(await dynamic(extra)) })).status).toBe(200);
    expect(seen).toHaveLength(3);
  });
});
