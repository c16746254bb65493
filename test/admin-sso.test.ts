// Operators' single sign-on connections (org:sso:set|show|remove) through the signed admin routes: validated before
// anything is written, the client secret sealed in the gateway and never answered or audited, domains routed to one
// organisation, members' remembered identities forgotten with their issuer, each change one D1 batch.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { importSealingKey, openSecret } from "../src/dynamic-secrets/crypto";
import { ssoSecretOwner } from "../src/sso/logins";
import { adminCall, adminRequest, auditRowsOf, problem, randomId } from "./helpers";
import { hookedD1, location } from "./locations";

const CLIENT_SECRET = "client-secret-value with spaces ";

async function ok(response: Response): Promise<Record<string, any>> {
  expect(response.status, await response.clone().text()).toBe(200);
  expect(response.headers.get("Cache-Control")).toBe("no-store");
  return response.json();
}

async function expectProblem(response: Response, status: number, code: string): Promise<Record<string, any>> {
  expect(response.status, await response.clone().text()).toBe(status);
  const body = await problem(response);
  expect(body.code).toBe(code);
  return body;
}

/** The one audit row of an admin request, with its detail parsed. */
async function auditedOnce(response: Response): Promise<Record<string, any>> {
  const rows = await auditRowsOf(response.headers.get("X-Request-Id")!);
  expect(rows).toHaveLength(1);
  return { ...rows[0], detail: JSON.parse(rows[0]!.detail!) };
}

async function newOrganisation(): Promise<{ identifier: string; domain: string; id: number }> {
  const identifier = randomId("z");
  const domain = `${identifier}.example`;
  const { organisation } = await ok(await adminCall("org/create", { identifier, name: "Zeta", domain, plan: "free" }));
  return { identifier, domain, id: organisation.id };
}

/** A member of the organisation whose identity at `issuer` is remembered. */
async function pinnedMember(organisationId: number, domain: string, issuer: string): Promise<number> {
  const row = await env.DB.prepare(
    "INSERT INTO members (identifier, organisation_id, email, password_hash, sso_issuer, sso_subject) VALUES (?, ?, ?, 'x', ?, ?) RETURNING id",
  )
    .bind(randomId("p"), organisationId, `${randomId("p")}@${domain}`, issuer, randomId("sub"))
    .first<{ id: number }>();
  return row!.id;
}

async function pinnedCount(organisationId: number): Promise<number> {
  return (await env.DB.prepare(
    "SELECT count(*) AS n FROM members WHERE organisation_id = ? AND (sso_issuer IS NOT NULL OR sso_subject IS NOT NULL)",
  )
    .bind(organisationId)
    .first<number>("n"))!;
}

async function storedConnection(organisationId: number) {
  const connection = await env.DB.prepare("SELECT * FROM sso_connections WHERE organisation_id = ?")
    .bind(organisationId)
    .first<Record<string, any>>();
  const { results } = await env.DB.prepare("SELECT domain FROM sso_domains WHERE organisation_id = ? ORDER BY domain")
    .bind(organisationId)
    .all<{ domain: string }>();
  return { connection, domains: results.map((row) => row.domain) };
}

async function opened(organisation: string, sealed: string): Promise<string> {
  const key = await importSealingKey(Uint8Array.fromBase64(env.SECRETS_KEY!, { alphabet: "base64url" }));
  return openSecret(key, ssoSecretOwner(organisation), sealed);
}

describe("org/sso/set", () => {
  it("connects an organisation: the secret sealed under SECRETS_KEY, never answered or audited; domains default to the organisation's", async () => {
    const org = await newOrganisation();
    const response = await adminCall("org/sso/set", {
      org: org.identifier,
      issuer: " https://login.example.com/tenant/v2.0 ",
      client_id: " gridgate ",
      client_secret: CLIENT_SECRET,
    });
    const answer = await ok(response);
    expect(answer).toEqual({
      organisation: org.identifier,
      created: true,
      connection: {
        issuer: "https://login.example.com/tenant/v2.0",
        client_id: "gridgate",
        domains: [org.domain],
        required: false,
        created_at: expect.any(Number),
        updated_at: expect.any(Number),
      },
      forgotten: 0,
      redirect_uri: "https://gateway.test/authenticate/sso/callback",
    });
    const audited = await auditedOnce(response);
    expect(audited).toMatchObject({
      event: "org.sso.set",
      outcome: "success",
      organisation_id: org.id,
      member_id: null,
      detail: {
        actor: "operator",
        organisation: org.identifier,
        issuer: "https://login.example.com/tenant/v2.0",
        client_id: "gridgate",
        domains: org.domain,
        required: false,
        created: true,
        credential: "new",
        forgotten: 0,
      },
    });
    expect(JSON.stringify(audited)).not.toContain(CLIENT_SECRET.trim());
    const { connection, domains } = await storedConnection(org.id);
    expect(connection!.client_secret).toMatch(/^v1\./);
    expect(connection!.client_secret).not.toContain(CLIENT_SECRET.trim());
    expect(await opened(org.identifier, connection!.client_secret)).toBe(CLIENT_SECRET);
    expect(domains).toEqual([org.domain]);
  });

  it("changes what it is given and keeps the rest (the sealed secret too); domains replaced, normalised and deduplicated", async () => {
    const org = await newOrganisation();
    await ok(
      await adminCall("org/sso/set", {
        org: org.identifier,
        issuer: "http://127.0.0.1:8789",
        client_id: "first",
        client_secret: CLIENT_SECRET,
        domains: [org.domain, `mail.${org.domain}`],
      }),
    );
    const sealed = (await storedConnection(org.id)).connection!.client_secret;
    const response = await adminCall("org/sso/set", {
      org: org.identifier,
      required: true,
      domains: [` Mail.${org.domain.toUpperCase()} `, `mail.${org.domain}`, `b.${org.domain}`],
    });
    expect(await ok(response)).toMatchObject({
      created: false,
      connection: {
        issuer: "http://127.0.0.1:8789",
        client_id: "first",
        domains: [`mail.${org.domain}`, `b.${org.domain}`],
        required: true,
      },
    });
    expect((await auditedOnce(response)).detail).toMatchObject({ created: false, credential: "kept", required: true });
    const after = await storedConnection(org.id);
    expect(after.connection).toMatchObject({ client_secret: sealed, required: 1 });
    expect(after.domains).toEqual([`b.${org.domain}`, `mail.${org.domain}`]);

    await ok(await adminCall("org/sso/set", { org: org.identifier, client_secret: "rotated" }));
    const rotated = (await storedConnection(org.id)).connection!.client_secret;
    expect(rotated).not.toBe(sealed);
    expect(await opened(org.identifier, rotated)).toBe("rotated");
  });

  it("a new issuer forgets the members' identities at the previous one; the same issuer keeps them", async () => {
    const org = await newOrganisation();
    const connect = { org: org.identifier, issuer: "https://idp.example", client_id: "c", client_secret: "s" };
    await ok(await adminCall("org/sso/set", connect));
    await pinnedMember(org.id, org.domain, "https://idp.example");
    await ok(await adminCall("org/sso/set", { ...connect, required: true }));
    expect(await pinnedCount(org.id)).toBe(1);
    const moved = await adminCall("org/sso/set", { org: org.identifier, issuer: "https://other-idp.example" });
    expect(await ok(moved)).toMatchObject({ forgotten: 1, connection: { issuer: "https://other-idp.example" } });
    expect((await auditedOnce(moved)).detail).toMatchObject({ forgotten: 1 });
    expect(await pinnedCount(org.id)).toBe(0);
  });

  it("refuses a domain routed to another organisation (400), naming it, and changes nothing", async () => {
    const first = await newOrganisation();
    const second = await newOrganisation();
    const connect = { issuer: "https://idp.example", client_id: "c", client_secret: "s" };
    await ok(await adminCall("org/sso/set", { org: first.identifier, ...connect }));
    await ok(await adminCall("org/sso/set", { org: second.identifier, ...connect }));
    const refused = await expectProblem(
      await adminCall("org/sso/set", { org: second.identifier, domains: [second.domain, first.domain] }),
      400,
      "invalid_request",
    );
    expect(refused.detail).toContain(`${first.domain} (${first.identifier})`);
    expect((await storedConnection(second.id)).domains).toEqual([second.domain]);
    expect((await storedConnection(first.id)).domains).toEqual([first.domain]);
  });

  it("refuses another organisation's own domain (400), even without a connection there, and changes nothing", async () => {
    const first = await newOrganisation();
    const second = await newOrganisation();
    const refused = await expectProblem(
      await adminCall("org/sso/set", {
        org: second.identifier,
        issuer: "https://idp.example",
        client_id: "c",
        client_secret: "s",
        domains: [second.domain, first.domain],
        required: true,
      }),
      400,
      "invalid_request",
    );
    expect(refused.detail).toContain(`${first.domain} (${first.identifier})`);
    expect(
      await env.DB.prepare("SELECT 1 FROM sso_connections WHERE organisation_id = ?").bind(second.id).first(),
    ).toBeNull();
  });

  it.each([
    { issuer: "http://login.example.com" },
    { issuer: "https://login.example.com/?x=1" },
    { issuer: "https://login.example.com/#x" },
    { issuer: "https://u:p@login.example.com" },
    { issuer: "ftp://x" },
    { issuer: "https://login.example.com/a b" },
    { issuer: "" },
    { issuer: 7 },
    { client_id: "has space" },
    { client_id: "" },
    { client_secret: "" },
    { client_secret: "line\nbreak" },
    { client_secret: "x".repeat(1025) },
    { domains: [] },
    { domains: "a.example" },
    { domains: ["not a domain"] },
    { domains: [7] },
    { domains: Array.from({ length: 51 }, (_, i) => `d${i}.example`) },
    { required: "yes" },
  ])("refuses bad input %# with a 400 and changes nothing", async (bad) => {
    const org = await newOrganisation();
    const connect = { org: org.identifier, issuer: "https://idp.example", client_id: "c", client_secret: "s" };
    await expectProblem(await adminCall("org/sso/set", { ...connect, ...bad }), 400, "invalid_request");
    expect((await storedConnection(org.id)).connection).toBeNull();
    await ok(await adminCall("org/sso/set", connect));
    const before = await storedConnection(org.id);
    await expectProblem(await adminCall("org/sso/set", { org: org.identifier, ...bad }), 400, "invalid_request");
    expect(await storedConnection(org.id)).toEqual(before);
  });

  it("a new connection needs issuer, client id and secret (400); an unknown organisation is 404", async () => {
    const org = await newOrganisation();
    const full = { org: org.identifier, issuer: "https://idp.example", client_id: "c", client_secret: "s" };
    for (const missing of ["issuer", "client_id", "client_secret"] as const) {
      const { [missing]: _omitted, ...partial } = full;
      const refused = await expectProblem(await adminCall("org/sso/set", partial), 400, "invalid_request");
      expect(refused.detail).toBe("A new connection needs issuer, client_id and client_secret.");
    }
    expect((await storedConnection(org.id)).connection).toBeNull();
    await expectProblem(await adminCall("org/sso/set", { ...full, org: "nobody-here" }), 404, "not_found");
  });

  it("writes all or nothing: a domain taken between the check and the write fails the batch (503), nothing changed", async () => {
    const org = await newOrganisation();
    const rival = await newOrganisation();
    const connect = { org: org.identifier, issuer: "https://idp.example", client_id: "c", client_secret: "s" };
    await ok(await adminCall("org/sso/set", connect));
    await pinnedMember(org.id, org.domain, "https://idp.example");
    const before = await storedConnection(org.id);
    const contested = `contested.${org.domain}`;
    const racing = location(
      { now: Date.now() },
      {
        ...env,
        DB: hookedD1(/from "sso_domains" inner join "organisations"/, "after", async () => {
          await ok(
            await adminCall("org/sso/set", {
              org: rival.identifier,
              issuer: "https://rival.example",
              client_id: "r",
              client_secret: "r",
              domains: [contested],
            }),
          );
        }),
      },
    );
    const path = "/authenticate/admin/org/sso/set";
    const response = await racing.request(
      path,
      await adminRequest(path, {
        org: org.identifier,
        issuer: "https://other-idp.example",
        required: true,
        domains: [org.domain, contested],
      }),
    );
    await expectProblem(response, 503, "temporarily_unavailable");
    expect(await storedConnection(org.id)).toEqual(before);
    expect(await pinnedCount(org.id)).toBe(1);
  });
});

describe("org/sso/show and org/sso/remove", () => {
  it("show answers the connection without its secret, with the members signed in by SSO; remove deletes it, its domains and the identities", async () => {
    const org = await newOrganisation();
    const none = await adminCall("org/sso/show", { org: org.identifier });
    expect(await ok(none)).toEqual({ organisation: org.identifier, connection: null });
    expect(await auditedOnce(none)).toMatchObject({
      event: "org.sso.show",
      organisation_id: org.id,
      detail: { actor: "operator", organisation: org.identifier, connected: false },
    });

    await ok(
      await adminCall("org/sso/set", {
        org: org.identifier,
        issuer: "https://idp.example",
        client_id: "c",
        client_secret: CLIENT_SECRET,
        domains: [org.domain, `mail.${org.domain}`],
      }),
    );
    await pinnedMember(org.id, org.domain, "https://idp.example");
    const shown = await adminCall("org/sso/show", { org: org.identifier });
    const answer = await ok(shown);
    expect(answer).toEqual({
      organisation: org.identifier,
      connection: {
        issuer: "https://idp.example",
        client_id: "c",
        domains: expect.arrayContaining([org.domain, `mail.${org.domain}`]),
        required: false,
        pinned: 1,
        created_at: expect.any(Number),
        updated_at: expect.any(Number),
      },
    });
    expect(Math.abs(answer.connection.created_at - Date.now() / 1000)).toBeLessThan(60);
    expect((await auditedOnce(shown)).detail).toMatchObject({ connected: true });
    const sealed = (await storedConnection(org.id)).connection!.client_secret;
    for (const text of [JSON.stringify(answer), JSON.stringify(await auditRowsOf(shown.headers.get("X-Request-Id")!))])
      for (const secret of [CLIENT_SECRET.trim(), sealed]) expect(text).not.toContain(secret);

    const removed = await adminCall("org/sso/remove", { org: org.identifier });
    expect(await ok(removed)).toMatchObject({
      organisation: org.identifier,
      removed: { issuer: "https://idp.example", client_id: "c" },
      forgotten: 1,
    });
    expect(JSON.stringify(await auditedOnce(removed))).not.toContain(sealed);
    expect(await auditedOnce(removed)).toMatchObject({
      event: "org.sso.remove",
      organisation_id: org.id,
      detail: { actor: "operator", organisation: org.identifier, issuer: "https://idp.example", forgotten: 1 },
    });
    expect(await storedConnection(org.id)).toEqual({ connection: null, domains: [] });
    expect(await pinnedCount(org.id)).toBe(0);
    expect(await ok(await adminCall("org/sso/show", { org: org.identifier }))).toMatchObject({ connection: null });
  });

  it("remove without a connection, and both for an unknown organisation, are 404; a bad org is 400", async () => {
    const org = await newOrganisation();
    await expectProblem(await adminCall("org/sso/remove", { org: org.identifier }), 404, "not_found");
    for (const route of ["org/sso/show", "org/sso/remove"]) {
      await expectProblem(await adminCall(route, { org: "nobody-here" }), 404, "not_found");
      await expectProblem(await adminCall(route, { org: "has space" }), 400, "invalid_request");
    }
  });
});
