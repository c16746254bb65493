// Admin commands' pure parts (argument and CSV validation) and their SQL, run against the real local D1.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { parseCsv, parseImport } from "../scripts/admin/csv";
import * as sql from "../scripts/admin/sql";
import * as sso from "../scripts/admin/sso";
import * as valid from "../scripts/admin/values";
import { hashPassword } from "../src/credentials/password";
import { postLogin } from "./helpers";

const BCRYPT = "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";
const PASSWORD = "admin-created-password";

function unique(prefix: string): string {
  return `${prefix}${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
}

async function run(statements: string | string[]): Promise<void> {
  await env.DB.batch([statements].flat().map((statement) => env.DB.prepare(statement)));
}

async function newOrganisation(plan = "professional"): Promise<{ identifier: string; domain: string }> {
  const identifier = unique("org");
  const domain = `${identifier}.example`;
  await run(sql.createOrganisationSql({ identifier, name: "O'Brien & Co", domain, plan }));
  return { identifier, domain };
}

describe("argument validation", () => {
  it("accepts and normalises good values", () => {
    expect(valid.identifier("--org", " m7l9hw ")).toBe("m7l9hw");
    expect(valid.domain(" Acme.Example ")).toBe("acme.example");
    expect(valid.email("--email", " Alice@Acme.EXAMPLE ")).toBe("alice@acme.example");
    expect(valid.plan("enterprise")).toBe("enterprise");
    expect(valid.role("--role", "builder")).toBe("builder");
    expect(valid.role("--role", "none")).toBeNull();
    expect(valid.scopes("--scopes", "getGrids, grids getGrids")).toBe("getGrids grids");
    expect(valid.bcryptHash("h", BCRYPT)).toBe(BCRYPT);
    expect(valid.memberId("--member-id", " 42 ")).toBe(42);
  });

  it.each([
    () => valid.identifier("--org", "has space"),
    () => valid.identifier("--org", undefined),
    () => valid.domain("localhost"),
    () => valid.email("--email", "no-at-sign"),
    () => valid.plan("gold"),
    () => valid.role("--role", "organisation"),
    () => valid.role("--role", ""),
    () => valid.scopes("--scopes", "getGrids architect"),
    () => valid.scopes("--scopes", 'bad"scope'),
    () => valid.password("too short"),
    () => valid.password("x".repeat(1025)),
    () => valid.bcryptHash("h", "$2b$03$" + BCRYPT.slice(7)),
    () => valid.bcryptHash("h", "$2b$13$" + BCRYPT.slice(7)),
    () => valid.bcryptHash("h", "$pbkdf2-sha256$i=1$x$y"),
    () => valid.memberId("--member-id", "0"),
    () => valid.memberId("--member-id", "-3"),
    () => valid.memberId("--member-id", "1e3"),
    () => valid.memberId("--member-id", "99999999999999999"),
  ])("refuses bad value %#", (check) => {
    expect(check).toThrow(valid.AdminInputError);
  });

  it("generates 6-character lower-case alphanumeric member identifiers", () => {
    const identifiers = new Set(Array.from({ length: 200 }, valid.newMemberIdentifier));
    for (const identifier of identifiers) expect(identifier).toMatch(/^[a-z0-9]{6}$/);
    expect(identifiers.size).toBeGreaterThan(195);
  });
});

describe("CSV import files", () => {
  it("parses RFC 4180 quoting, CRLF and a BOM", () => {
    expect(parseCsv('\uFEFFa,b\r\n"x, ""y""",\n\nlast,"multi\nline"')).toEqual([
      ["a", "b"],
      ['x, "y"', ""],
      ["last", "multi\nline"],
    ]);
    expect(() => parseCsv('a,"open')).toThrow(valid.AdminInputError);
  });

  it("validates and normalises every row", () => {
    const rows = parseImport(
      `email,role,scopes,bcrypt_hash\nAlice@X.example,builder,,${BCRYPT}\nbob@x.example,,"getGrids postGrids",${BCRYPT}\n`,
    );
    expect(rows).toEqual([
      { line: 2, email: "alice@x.example", role: "builder", scopes: "", passwordHash: BCRYPT },
      { line: 3, email: "bob@x.example", role: null, scopes: "getGrids postGrids", passwordHash: BCRYPT },
    ]);
  });

  it("lists every bad row and refuses the whole file", () => {
    const file = [
      "email,role,scopes,bcrypt_hash",
      `ok@x.example,user,,${BCRYPT}`,
      `bad,user,,${BCRYPT}`,
      `OK@x.example,user,,${BCRYPT}`,
      "c@x.example,user,,not-a-hash",
      `d@x.example,,,${BCRYPT}`,
      "e@x.example,user",
    ].join("\n");
    expect(() => parseImport(file)).toThrow(
      /5 invalid row\(s\), nothing imported:\n {2}line 3: .*\n {2}line 4: ok@x.example is already on line 2\n {2}line 5: .*\n {2}line 6: .*role or .*\n {2}line 7: expected 4 columns/,
    );
    expect(() => parseImport(`email,password\nx@y.example,secret`)).toThrow(/header email,role,scopes,bcrypt_hash/);
    expect(() => parseImport("email,role,scopes,bcrypt_hash\n")).toThrow(/no member rows/);
  });
});

describe("admin SQL against D1", () => {
  it("creates an organisation and a member whose password the gateway accepts", async () => {
    const organisation = await newOrganisation();
    const email = `${unique("m")}@${organisation.domain}`;
    const member = {
      identifier: valid.newMemberIdentifier(),
      email,
      passwordHash: await hashPassword(PASSWORD, env.PASSWORD_PEPPER!),
      role: "user" as const,
      scopes: "deleteGrids",
    };
    await run(sql.insertMembersSql(organisation.identifier, [member]));

    const stored = await env.DB.prepare(
      "SELECT o.name, m.identifier, m.role, m.extra_scopes, m.status FROM members m JOIN organisations o ON o.id = m.organisation_id WHERE m.email = ?",
    )
      .bind(email)
      .first();
    expect(stored).toEqual({
      name: "O'Brien & Co",
      identifier: member.identifier,
      role: "user",
      extra_scopes: "deleteGrids",
      status: "active",
    });
    const response = await postLogin({ email, password: PASSWORD });
    expect(response.status).toBe(200);
    expect((await response.json<{ scope: string }>()).scope).toBe("user deleteGrids");
  });

  it("changes plans and suspends members the way login sees them", async () => {
    const organisation = await newOrganisation("enterprise");
    const email = `${unique("m")}@${organisation.domain}`;
    const passwordHash = await hashPassword(PASSWORD, env.PASSWORD_PEPPER!);
    await run(
      sql.insertMembersSql(organisation.identifier, [
        { identifier: valid.newMemberIdentifier(), email, passwordHash, role: "builder", scopes: "" },
      ]),
    );

    await run(sql.changePlanSql(organisation.identifier, "free"));
    expect((await postLogin({ email, password: PASSWORD })).status).toBe(403);
    await run(sql.changePlanSql(organisation.identifier, "professional"));
    expect((await postLogin({ email, password: PASSWORD })).status).toBe(200);
    await run(sql.setMemberStatusSql(organisation.identifier, email, "suspended"));
    const suspended = await postLogin({ email, password: PASSWORD });
    expect(suspended.status).toBe(403);
    expect((await suspended.json<{ code: string }>()).code).toBe("account_suspended");
  });

  it("imports all rows or none", async () => {
    const organisation = await newOrganisation();
    const rows = parseImport(
      `email,role,scopes,bcrypt_hash\na@${organisation.domain},user,,${BCRYPT}\nb@${organisation.domain},,getGrids,${BCRYPT}\n`,
    );
    const count = () =>
      env.DB.prepare(
        "SELECT count(*) AS n FROM members m JOIN organisations o ON o.id = m.organisation_id WHERE o.identifier = ?",
      )
        .bind(organisation.identifier)
        .first<number>("n");

    await run(
      sql.importMembersSql(
        organisation.identifier,
        rows,
        ["imp001", "imp002"].map((id) => id + unique("").slice(0, 2)),
      ),
    );
    expect(await count()).toBe(2);

    const clash = parseImport(
      `email,role,scopes,bcrypt_hash\nc@${organisation.domain},user,,${BCRYPT}\na@${organisation.domain},user,,${BCRYPT}\n`,
    );
    await expect(
      run(
        sql.importMembersSql(organisation.identifier, clash, [
          valid.newMemberIdentifier(),
          valid.newMemberIdentifier(),
        ]),
      ),
    ).rejects.toThrow(/UNIQUE/);
    expect(await count()).toBe(2);

    const many = Array.from({ length: 700 }, (_, i) => ({
      identifier: `bulk${i}`,
      email: `bulk${i}-${"x".repeat(100)}@example.com`,
      passwordHash: BCRYPT,
      role: null,
      scopes: "getGrids",
    }));
    const statements = sql.insertMembersSql(organisation.identifier, many);
    expect(statements.length).toBeGreaterThan(1);
    for (const statement of statements)
      expect(new TextEncoder().encode(statement).byteLength).toBeLessThanOrEqual(sql.MAX_STATEMENT_BYTES);
  });

  it("quotes every literal", () => {
    expect(sql.literal("it's")).toBe("'it''s'");
    expect(sql.literal(null)).toBe("NULL");
    expect(() => sql.literal("a\0b")).toThrow();
  });
});

describe("org:sso:* (values and SQL against D1)", () => {
  it("validates issuer, client id, client secret, domains and required", () => {
    expect(sso.issuer(" https://login.example.com/tenant/v2.0 ")).toBe("https://login.example.com/tenant/v2.0");
    expect(sso.issuer("http://127.0.0.1:8789")).toBe("http://127.0.0.1:8789");
    for (const bad of [
      "http://login.example.com",
      "https://login.example.com/?x=1",
      "https://u:p@login.example.com",
      "ftp://x",
    ])
      expect(() => sso.issuer(bad), bad).toThrow(valid.AdminInputError);
    expect(() => sso.clientId("has space")).toThrow(valid.AdminInputError);
    expect(sso.clientSecret("s3cret\n")).toBe("s3cret");
    expect(() => sso.clientSecret("\n")).toThrow(valid.AdminInputError);
    expect(sso.domains(" Acme.Example, acme.example,b.example")).toEqual(["acme.example", "b.example"]);
    expect(() => sso.domains("not a domain")).toThrow(valid.AdminInputError);
    expect(sso.required("yes")).toBe(true);
    expect(() => sso.required("maybe")).toThrow(valid.AdminInputError);
  });

  it("sets, changes and removes a connection: sealed secret, domains replaced, identities of another issuer forgotten, audited", async () => {
    const organisation = await newOrganisation();
    const key = Uint8Array.fromBase64(env.SECRETS_KEY!, { alphabet: "base64url" });
    const sealedSecret = await sso.sealClientSecret(key, organisation.identifier, "client-secret-value");
    expect(sealedSecret).toMatch(/^v1\./);
    expect(sealedSecret).not.toContain("client-secret-value");
    const connection = {
      organisation: organisation.identifier,
      issuer: "https://idp.example",
      clientId: "client",
      sealedSecret,
      required: false,
      domains: [organisation.domain, `mail.${organisation.domain}`],
    };
    await run(sso.setConnectionSql(connection));
    await run(
      `INSERT INTO members (identifier, organisation_id, email, password_hash, sso_issuer, sso_subject) SELECT '${unique("p")}', id, 'p@${organisation.domain}', 'x', 'https://idp.example', 'sub-1' FROM organisations WHERE identifier = '${organisation.identifier}'`,
    );
    const pinned = () =>
      env.DB.prepare(
        "SELECT count(*) AS n FROM members m JOIN organisations o ON o.id = m.organisation_id WHERE o.identifier = ? AND m.sso_subject IS NOT NULL",
      )
        .bind(organisation.identifier)
        .first<number>("n");
    const shown = () => env.DB.prepare(sso.connectionQuery(organisation.identifier)).first<Record<string, unknown>>();
    expect(await shown()).toMatchObject({ issuer: "https://idp.example", required: 0, pinned: 1 });

    await run(sso.setConnectionSql({ ...connection, required: true, domains: [organisation.domain] }));
    expect(await shown()).toMatchObject({ required: 1, domains: organisation.domain, pinned: 1 });
    await run(sso.setConnectionSql({ ...connection, issuer: "https://other-idp.example" }));
    expect(await pinned()).toBe(0);
    const conflicts = await env.DB.prepare(sso.domainConflictsQuery("someone-else", [organisation.domain])).all();
    expect(conflicts.results).toEqual([{ domain: organisation.domain, identifier: organisation.identifier }]);

    await run(sso.removeConnectionSql(organisation.identifier));
    expect(await shown()).toBeNull();
    const routed = await env.DB.prepare("SELECT count(*) AS n FROM sso_domains WHERE domain LIKE ?")
      .bind(`%${organisation.domain}`)
      .first<number>("n");
    expect(routed).toBe(0);
    const events = await env.DB.prepare(
      "SELECT a.event FROM audit_events a JOIN organisations o ON o.id = a.organisation_id WHERE o.identifier = ? ORDER BY a.id",
    )
      .bind(organisation.identifier)
      .all<{ event: string }>();
    expect(events.results.map((row) => row.event)).toEqual([
      "sso.connection.set",
      "sso.connection.set",
      "sso.connection.set",
      "sso.connection.removed",
    ]);
  });
});
