// Dynamic per-organisation secrets: lifecycle routes, verification of dynamic tokens, caching bounds.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { parseConfig } from "../src/config";
import {
  accessTokenFor,
  authorization,
  fakeOrigin,
  fixedClaims,
  gateway,
  newArchitectOrganisation,
  now,
  problem,
  randomId,
  signWithJose,
  spyOnD1Statements,
  type TestOrganisation,
} from "./helpers";
import { location } from "./locations";

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

function createSecret(token: string, body?: unknown): Promise<Response> {
  return gateway("/authenticate/secrets", {
    method: "POST",
    headers: { ...authorization(token), ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Creates a secret through the API and returns the one response that holds its value. */
async function newSecret(org: TestOrganisation, label?: string): Promise<{ kid: string; secret: string }> {
  const response = await createSecret(org.token, label === undefined ? undefined : { label });
  expect(response.status, await response.clone().text()).toBe(201);
  return response.json();
}

function dynamicToken(
  org: TestOrganisation,
  secret: string,
  kid?: string,
  overrides: Record<string, unknown> = {},
): Promise<string> {
  const claims = {
    iat: now(),
    memberEntityIdentifier: org.member,
    organisationEntityIdentifier: org.identifier,
    scope: "organisation",
    secretType: "dynamic",
    ...overrides,
  };
  return signWithJose(claims, secret, kid ? { kid } : {});
}

function getGrids(token: string): Promise<Response> {
  return gateway("/grids", { headers: authorization(token) });
}

async function liveKids(organisationId: number): Promise<string[]> {
  const { results } = await env.DB.prepare(
    "SELECT kid FROM dynamic_secrets WHERE organisation_id = ? AND revoked_at IS NULL",
  )
    .bind(organisationId)
    .all<{ kid: string }>();
  return results.map((row) => row.kid);
}

describe("POST /authenticate/secrets", () => {
  it("returns the value once, 201 and no-store, and stores only AES-GCM ciphertext", async () => {
    const org = await newArchitectOrganisation("enterprise", "s");
    const response = await createSecret(org.token, { label: "ci" });
    expect(response.status).toBe(201);
    expect(response.headers.get("Cache-Control")).toBe("no-store");
    const body = (await response.json()) as Record<string, any>;
    expect(body).toMatchObject({ label: "ci", algorithm: "HS256", organisationEntityIdentifier: org.identifier });
    expect(body.kid).toMatch(/^ds_[A-Za-z0-9_-]{16}$/);
    expect(body.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Math.abs(body.created_at - now())).toBeLessThanOrEqual(2);

    const row = await env.DB.prepare("SELECT * FROM dynamic_secrets WHERE kid = ?")
      .bind(body.kid)
      .first<Record<string, any>>();
    expect(row).toMatchObject({ organisation_id: org.id, label: "ci", created_by: org.memberId, revoked_at: null });
    expect(row!.ciphertext).toMatch(/^v1\.[A-Za-z0-9_-]+$/);
    expect(JSON.stringify(row)).not.toContain(body.secret);

    fakeOrigin();
    expect((await getGrids(await dynamicToken(org, body.secret, body.kid))).status).toBe(200);
    const cached = await env.TOKENS.get(`dynsec:${org.identifier}`);
    expect(cached).toContain(body.kid);
    expect(cached).not.toContain(body.secret);
  });

  it("accepts an empty body, refuses bad labels and bodies without storing anything", async () => {
    const org = await newArchitectOrganisation("enterprise", "s");
    expect((await createSecret(org.token)).status).toBe(201);
    for (const body of [{ label: "x".repeat(101) }, { label: "a\nb" }, { label: 3 }, { name: "typo" }]) {
      const response = await createSecret(org.token, body);
      expect(response.status).toBe(400);
      await problem(response);
    }
    const form = await gateway("/authenticate/secrets", {
      method: "POST",
      headers: { ...authorization(org.token), "Content-Type": "text/plain" },
      body: "x",
    });
    expect(form.status).toBe(415);
    expect(await liveKids(org.id)).toHaveLength(1);
  });

  it("holds at most 10 live secrets per organisation (409), room again after a revoke", async () => {
    const org = await newArchitectOrganisation("enterprise", "s");
    for (let i = 0; i < 10; i++) await newSecret(org);
    const refused = await createSecret(org.token);
    expect(refused.status).toBe(409);
    expect((await problem(refused)).code).toBe("secret_limit_reached");
    const [first] = await liveKids(org.id);
    expect(
      (await gateway(`/authenticate/secrets/${first}`, { method: "DELETE", headers: authorization(org.token) })).status,
    ).toBe(204);
    expect((await createSecret(org.token)).status).toBe(201);
    expect(await liveKids(org.id)).toHaveLength(10);
  });
});

describe("who may manage secrets", () => {
  it("needs a fixed-secret architect token of an active member on an API plan", async () => {
    const org = await newArchitectOrganisation("enterprise", "s");
    const { kid, secret } = await newSecret(org);
    const free = await newArchitectOrganisation("free", "s");
    const cases: [Record<string, string>, number, string][] = [
      [{}, 401, "missing_token"],
      [authorization(await dynamicToken(org, secret, kid, { scope: "architect" })), 401, "invalid_token"],
      [authorization(await accessTokenFor("builder@acme.example")), 403, "insufficient_scope"],
      [
        authorization(
          await signWithJose(
            fixedClaims({
              organisationEntityIdentifier: org.identifier,
              memberEntityIdentifier: "nobody1",
              scope: "architect",
            }),
          ),
        ),
        401,
        "invalid_token",
      ],
      [authorization(free.token), 403, "plan_not_eligible"],
    ];
    for (const [headers, status, code] of cases) {
      for (const method of ["GET", "POST"]) {
        const response = await gateway("/authenticate/secrets", { method, headers });
        expect(response.status, `${method} ${JSON.stringify(headers).slice(0, 40)}`).toBe(status);
        expect((await problem(response)).code).toBe(code);
      }
    }
    await env.DB.prepare("UPDATE members SET status = 'suspended' WHERE id = ?").bind(org.memberId).run();
    for (const [path, method] of [
      ["/authenticate/secrets", "GET"],
      [`/authenticate/secrets/${kid}`, "DELETE"],
    ]) {
      const response = await gateway(path!, { method, headers: authorization(org.token) });
      expect(response.status).toBe(403);
      expect((await problem(response)).code).toBe("account_suspended");
    }
    expect(await liveKids(org.id)).toEqual([kid]);
    expect(await liveKids(free.id)).toEqual([]);
  });

  it("answers 405 with Allow for other methods", async () => {
    const put = await gateway("/authenticate/secrets", { method: "PUT" });
    expect(put.status).toBe(405);
    expect(put.headers.get("Allow")).toBe("GET, POST");
    const get = await gateway("/authenticate/secrets/ds_x", { method: "GET" });
    expect(get.status).toBe(405);
    expect(get.headers.get("Allow")).toBe("DELETE");
  });
});

describe("listing and revoking", () => {
  it("lists kids, labels and dates of the own organisation only, never a value", async () => {
    const org = await newArchitectOrganisation("enterprise", "s");
    const other = await newArchitectOrganisation("enterprise", "s");
    const a = await newSecret(org, "alpha");
    const b = await newSecret(org, "beta");
    const foreign = await newSecret(other, "theirs");
    const response = await gateway("/authenticate/secrets", { headers: authorization(org.token) });
    expect(response.status).toBe(200);
    expect(response.headers.get("Cache-Control")).toBe("no-store");
    const text = await response.text();
    for (const secret of [a.secret, b.secret, foreign.secret, "v1."]) expect(text).not.toContain(secret);
    const { secrets } = JSON.parse(text) as { secrets: Record<string, unknown>[] };
    expect(secrets.map((s) => s.kid).sort()).toEqual([a.kid, b.kid].sort());
    expect(secrets.find((s) => s.kid === a.kid)).toEqual({
      kid: a.kid,
      label: "alpha",
      created_at: expect.any(Number),
      created_by: org.memberId,
    });
  });

  it("revokes with 204, then 404; someone else's kid is 404 and stays live", async () => {
    const org = await newArchitectOrganisation("enterprise", "s");
    const other = await newArchitectOrganisation("enterprise", "s");
    const mine = await newSecret(org);
    const theirs = await newSecret(other);
    const revoke = (kid: string) =>
      gateway(`/authenticate/secrets/${kid}`, { method: "DELETE", headers: authorization(org.token) });

    const foreign = await revoke(theirs.kid);
    expect(foreign.status).toBe(404);
    expect(await foreign.text()).not.toContain(theirs.secret);
    expect(await liveKids(other.id)).toEqual([theirs.kid]);
    expect((await revoke("no%20such")).status).toBe(404);

    const done = await revoke(mine.kid);
    expect(done.status).toBe(204);
    expect(await done.text()).toBe("");
    expect((await revoke(mine.kid)).status).toBe(404);
    expect(await liveKids(org.id)).toEqual([]);
  });
});

describe("dynamic-secret tokens on the API", () => {
  it("are accepted with or without kid and exp, and forwarded as the stored member", async () => {
    const seen = fakeOrigin();
    const org = await newArchitectOrganisation("enterprise", "s");
    const { kid, secret } = await newSecret(org);
    expect((await getGrids(await dynamicToken(org, secret, kid))).status).toBe(200);
    expect((await getGrids(await dynamicToken(org, secret))).status).toBe(200);
    expect((await getGrids(await dynamicToken(org, secret, kid, { exp: now() + 60 }))).status).toBe(200);
    expect((await getGrids(await dynamicToken(org, secret, kid, { exp: now() - 120 }))).status).toBe(401);
    expect(seen).toHaveLength(3);
    expect(seen[0]!.headers).toMatchObject({
      "x-auth-secret-type": "dynamic",
      "x-member-entity-id": String(org.memberId),
      "x-member-entity-identifier": org.member,
      "x-organisation-entity-identifier": org.identifier,
    });
  });

  it("are refused once their secret is revoked, at once in the revoking isolate", async () => {
    fakeOrigin();
    const org = await newArchitectOrganisation("enterprise", "s");
    const { kid, secret } = await newSecret(org);
    const keep = await newSecret(org);
    const token = await dynamicToken(org, secret, kid);
    const noKid = await dynamicToken(org, secret);
    // Both accepted before: a repeat of a token that verified is still refused once its key is gone.
    expect((await getGrids(token)).status).toBe(200);
    expect((await getGrids(noKid)).status).toBe(200);
    expect(
      (await gateway(`/authenticate/secrets/${kid}`, { method: "DELETE", headers: authorization(org.token) })).status,
    ).toBe(204);
    for (const refused of [token, noKid]) {
      const response = await getGrids(refused);
      expect(response.status).toBe(401);
      expect(response.headers.get("WWW-Authenticate")).toContain('error="invalid_token"');
    }
    expect((await getGrids(await dynamicToken(org, keep.secret, keep.kid))).status).toBe(200);
  });

  it("refuse another organisation's secret, with its kid or without", async () => {
    fakeOrigin();
    const a = await newArchitectOrganisation("enterprise", "s");
    const b = await newArchitectOrganisation("enterprise", "s");
    await newSecret(a);
    const secretOfB = await newSecret(b);
    expect((await getGrids(await dynamicToken(b, secretOfB.secret, secretOfB.kid))).status).toBe(200);
    expect((await getGrids(await dynamicToken(a, secretOfB.secret))).status).toBe(401);
    expect((await getGrids(await dynamicToken(a, secretOfB.secret, secretOfB.kid))).status).toBe(401);
    expect(
      (await getGrids(await dynamicToken(a, secretOfB.secret, secretOfB.kid, { memberEntityIdentifier: b.member })))
        .status,
    ).toBe(401);
  });

  it("are never accepted as fixed-secret tokens, nor a dynamic secret for a fixed token", async () => {
    fakeOrigin();
    const org = await newArchitectOrganisation("enterprise", "s");
    const { kid, secret } = await newSecret(org);
    expect(
      (
        await getGrids(
          await signWithJose(
            fixedClaims({ organisationEntityIdentifier: org.identifier, memberEntityIdentifier: org.member }),
            secret,
            { kid },
          ),
        )
      ).status,
    ).toBe(401);
    expect((await getGrids(await dynamicToken(org, env.JWT_SECRET!))).status).toBe(401);
  });

  it("need an existing, active member of the organisation whose id matches", async () => {
    fakeOrigin();
    const org = await newArchitectOrganisation("enterprise", "s");
    const { kid, secret } = await newSecret(org);
    expect((await getGrids(await dynamicToken(org, secret, kid, { memberEntityIdentifier: "o6q2is" }))).status).toBe(
      401,
    );
    expect((await getGrids(await dynamicToken(org, secret, kid, { memberEntityId: org.memberId + 1 }))).status).toBe(
      401,
    );
    expect((await getGrids(await dynamicToken(org, secret, kid, { memberEntityId: org.memberId }))).status).toBe(200);

    const suspended = randomId("m");
    await env.DB.prepare(
      "INSERT INTO members (identifier, organisation_id, email, password_hash, status) VALUES (?, ?, ?, 'x', 'suspended')",
    )
      .bind(suspended, org.id, `${suspended}@x.example`)
      .run();
    expect((await getGrids(await dynamicToken(org, secret, kid, { memberEntityIdentifier: suspended }))).status).toBe(
      403,
    );
  });

  it("pass the plan gate like every token", async () => {
    fakeOrigin();
    const org = await newArchitectOrganisation("enterprise", "s");
    const { kid, secret } = await newSecret(org);
    await env.DB.prepare("UPDATE organisations SET plan = 'free' WHERE id = ?").bind(org.id).run();
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.advanceTimersByTime(61_000);
    const response = await getGrids(await dynamicToken(org, secret, kid));
    expect(response.status).toBe(403);
    expect((await problem(response)).code).toBe("plan_not_eligible");
  });
});

describe("cost and staleness of dynamic lookups", () => {
  it("checks the members of a small organisation from the list that came with its keys; one added since by its own look-up", async () => {
    fakeOrigin();
    const org = await newArchitectOrganisation("enterprise", "s");
    const { kid, secret } = await newSecret(org);
    const other = randomId("m");
    await env.DB.prepare(
      "INSERT INTO members (identifier, organisation_id, email, password_hash) VALUES (?, ?, ?, 'x')",
    )
      .bind(other, org.id, `${other}@x.example`)
      .run();
    await env.TOKENS.delete(`dynsec:${org.identifier}`);
    const located = location({ now: Date.now() });
    const send = async (member: string) =>
      (
        await located.request("/grids", {
          headers: authorization(await dynamicToken(org, secret, kid, { memberEntityIdentifier: member })),
        })
      ).status;
    const statements = spyOnD1Statements();
    expect(await send(org.member)).toBe(200);
    expect(await send(other)).toBe(200);
    expect(
      statements.mock.calls.map(([sql]) => sql).filter((sql) => sql.includes('"members"')),
      "one look-up",
    ).toHaveLength(1);

    const added = randomId("m");
    await env.DB.prepare(
      "INSERT INTO members (identifier, organisation_id, email, password_hash) VALUES (?, ?, ?, 'x')",
    )
      .bind(added, org.id, `${added}@x.example`)
      .run();
    expect(await send(added), "not in the list yet: its own look-up finds it").toBe(200);
  });

  it("answers unknown organisations and kids from memory: no D1 query, no KV read", async () => {
    fakeOrigin();
    const org = await newArchitectOrganisation("enterprise", "s");
    const { kid, secret } = await newSecret(org);
    expect((await getGrids(await dynamicToken(org, secret, kid))).status).toBe(200);
    const spies = [spyOnD1Statements(), vi.spyOn(env.DB, "batch"), vi.spyOn(env.TOKENS, "get")];
    for (let i = 0; i < 50; i++) {
      const stranger = { ...org, identifier: randomId("x") };
      expect((await getGrids(await dynamicToken(stranger, secret, kid))).status).toBe(401);
    }
    expect((await getGrids(await dynamicToken(org, secret, "ds_unknownkid0000"))).status).toBe(401);
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  });

  it("notices a revocation made elsewhere within 60 s, never later", async () => {
    fakeOrigin();
    vi.useFakeTimers({ toFake: ["Date"] });
    const org = await newArchitectOrganisation("enterprise", "s");
    const { kid, secret } = await newSecret(org);
    const token = await dynamicToken(org, secret, kid);
    expect((await getGrids(token)).status).toBe(200);
    await env.DB.prepare("UPDATE dynamic_secrets SET revoked_at = unixepoch() WHERE kid = ?").bind(kid).run();

    expect((await getGrids(token)).status, "this isolate's entry is still fresh").toBe(200);
    vi.advanceTimersByTime(31_000);
    expect((await getGrids(token)).status, "KV's copy is 31 s old, still within the bound").toBe(200);
    vi.advanceTimersByTime(25_000);
    expect((await getGrids(token)).status, "56 s after the D1 read, KV's copy is refused too").toBe(401);
  });

  it("binds each ciphertext to its organisation and kid", async () => {
    fakeOrigin();
    const a = await newArchitectOrganisation("enterprise", "s");
    const b = await newArchitectOrganisation("enterprise", "s");
    const { kid, secret } = await newSecret(a);
    await newSecret(b);
    await env.DB.prepare("UPDATE dynamic_secrets SET organisation_id = ? WHERE kid = ?").bind(b.id, kid).run();
    await env.TOKENS.delete(`dynsec:${b.identifier}`);
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    expect((await getGrids(await dynamicToken(b, secret, kid))).status).toBe(401);
    expect(errors.mock.calls.join(" ")).toContain("dynamic_secret_unreadable");
    expect(errors.mock.calls.join(" ")).not.toContain(secret);
  });
});

describe("SECRETS_KEY configuration", () => {
  it("is optional, but must be 32 bytes of base64url when set", () => {
    const base = { ...env };
    expect(parseConfig({ ...base, SECRETS_KEY: undefined }).secretsKey).toBeUndefined();
    expect(parseConfig(base).secretsKey).toHaveLength(32);
    for (const bad of [
      "short",
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
      "+AECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
    ]) {
      expect(() => parseConfig({ ...base, SECRETS_KEY: bad }), bad).toThrow(/SECRETS_KEY must be 32 random bytes/);
    }
  });
});
