// The admin routes through the HTTP surface: organisations and members made, listed and changed by signed requests,
// each validated before anything is written and audited as its own event; the import file's rules.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { parseCsv, parseImport } from "../scripts/admin/csv";
import * as valid from "../src/admin/inputs";
import { ADMIN_SIGNATURE_HEADER, signAdminRequest } from "../src/admin/signature";
import { GatewayError } from "../src/gateway-error";
import { adminCall, adminRequest, auditRowsOf, gateway, postLogin, problem, randomId } from "./helpers";
import { location } from "./locations";

/** A cost-10 bcrypt hash of {@link BCRYPT_PASSWORD} (the one docs/operating.md imports). */
const BCRYPT = "$2b$10$o4Q9CP5iotWXYFpH/3g01.MoWGb5fVem3YOeuAjHf9ACql66qyTba";
const BCRYPT_PASSWORD = "imported-password-2024";
const PASSWORD = "admin-created-password";

/** Every admin route, with a body it accepts in form (the subjects need not exist). */
const ROUTES: [string, Record<string, unknown>][] = [
  ["org/create", { identifier: "x1", name: "X", domain: "x1.example", plan: "free" }],
  ["org/list", {}],
  ["org/plan", { org: "x1", plan: "free" }],
  ["org/suspend", { org: "x1" }],
  ["org/activate", { org: "x1" }],
  ["org/sso/set", { org: "x1", issuer: "https://idp.example", client_id: "c", client_secret: "s" }],
  ["org/sso/show", { org: "x1" }],
  ["org/sso/remove", { org: "x1" }],
  ["member/create", { org: "x1", email: "a@x1.example", role: "user", password: PASSWORD }],
  ["member/import", { org: "x1", members: [{ email: "a@x1.example", role: "user", bcrypt_hash: BCRYPT }] }],
  ["member/list", { org: "x1" }],
  ["member/suspend", { org: "x1", email: "a@x1.example" }],
  ["member/activate", { org: "x1", email: "a@x1.example" }],
  ["member/sign-out", { member_id: 1 }],
  ["member/password", { org: "x1", email: "a@x1.example", password: PASSWORD }],
  ["member/delete", { org: "x1", email: "a@x1.example" }],
  ["member/unlock", { email: "a@x1.example" }],
  ["secret/create", { org: "x1" }],
  ["secret/list", { org: "x1" }],
  ["secret/revoke", { org: "x1", kid: "ds_x" }],
  ["audit", {}],
];

async function expectProblem(response: Response, status: number, code: string): Promise<Record<string, any>> {
  expect(response.status, await response.clone().text()).toBe(status);
  const body = await problem(response);
  expect(body.code).toBe(code);
  return body;
}

async function ok(response: Response): Promise<Record<string, any>> {
  expect(response.status, await response.clone().text()).toBe(200);
  expect(response.headers.get("Cache-Control")).toBe("no-store");
  return response.json();
}

/** The one audit row of an admin request, with its detail parsed. */
async function auditedOnce(response: Response): Promise<Record<string, any>> {
  const rows = await auditRowsOf(response.headers.get("X-Request-Id")!);
  expect(rows).toHaveLength(1);
  return { ...rows[0], detail: JSON.parse(rows[0]!.detail!) };
}

async function newOrganisation(plan = "professional"): Promise<{ identifier: string; domain: string; id: number }> {
  const identifier = randomId("a");
  const domain = `${identifier}.example`;
  const { organisation } = await ok(await adminCall("org/create", { identifier, name: "O'Brien & Co", domain, plan }));
  return { identifier, domain, id: organisation.id };
}

/** A request to the admin route `path` carrying exactly `text`, signed. */
async function signedText(path: string, text: string): Promise<RequestInit> {
  const signature = await signAdminRequest(env.ADMIN_SECRET!, Math.floor(Date.now() / 1000), path, text);
  return {
    method: "POST",
    headers: { "Content-Type": "application/json", [ADMIN_SIGNATURE_HEADER]: signature },
    body: text,
  };
}

async function count(table: string): Promise<number> {
  return (await env.DB.prepare(`SELECT count(*) AS n FROM ${table}`).first<number>("n"))!;
}

describe("every admin route", () => {
  it.each(ROUTES)(
    "%s refuses unsigned, wrongly signed, stale and tampered requests (401), other methods (405)",
    async (route, body) => {
      const path = `/authenticate/admin/${route}`;
      await expectProblem(await gateway(path, { method: "POST", body: JSON.stringify(body) }), 401, "invalid_token");
      await expectProblem(
        await gateway(path, await adminRequest(path, body, undefined, "x".repeat(40))),
        401,
        "invalid_token",
      );
      await expectProblem(
        await gateway(path, await adminRequest(path, body, Math.floor(Date.now() / 1000) - 120)),
        401,
        "invalid_token",
      );
      const other = ROUTES.find(([name]) => name !== route)![0];
      await expectProblem(
        await gateway(path, await adminRequest(`/authenticate/admin/${other}`, body)),
        401,
        "invalid_token",
      );
      const signed = await adminRequest(path, body);
      await expectProblem(
        await gateway(path, { ...signed, body: JSON.stringify({ ...body, extra: 1 }) }),
        401,
        "invalid_token",
      );
      await expectProblem(await gateway(path), 405, "method_not_allowed");
    },
  );

  it.each(ROUTES)("%s refuses a body that is not a JSON object, or has an unknown field (400)", async (route, body) => {
    const path = `/authenticate/admin/${route}`;
    for (const bad of ["not json", "[]", "null", JSON.stringify({ ...body, surprise: true })])
      await expectProblem(await gateway(path, await signedText(path, bad)), 400, "invalid_request");
  });

  it("are absent without ADMIN_SECRET (404), and refuse bodies over 16 KiB (413)", async () => {
    const disabled = location({ now: Date.now() }, { ...env, ADMIN_SECRET: undefined });
    for (const [route, body] of ROUTES) {
      const path = `/authenticate/admin/${route}`;
      await expectProblem(await disabled.request(path, await adminRequest(path, body)), 404, "not_found");
    }
    const path = "/authenticate/admin/org/list";
    await expectProblem(
      await gateway(path, await adminRequest(path, { padding: "x".repeat(17 * 1024) })),
      413,
      "payload_too_large",
    );
  });
});

describe("organisations", () => {
  it("org:create makes an organisation (audited org.create by the operator); a taken identifier or domain is refused", async () => {
    const identifier = randomId("a");
    const response = await adminCall("org/create", {
      identifier,
      name: " Acme & Co ",
      domain: ` ${identifier.toUpperCase()}.Example `,
      plan: "enterprise",
    });
    const { organisation } = await ok(response);
    expect(organisation).toMatchObject({
      identifier,
      name: "Acme & Co",
      domain: `${identifier}.example`,
      plan: "enterprise",
      status: "active",
    });
    expect(await auditedOnce(response)).toMatchObject({
      event: "org.create",
      outcome: "success",
      organisation_id: organisation.id,
      member_id: null,
      user_agent: null,
      detail: { actor: "operator", organisation: identifier, plan: "enterprise" },
    });

    const before = await count("organisations");
    for (const clash of [
      { identifier, name: "Again", domain: "elsewhere.example", plan: "free" },
      { identifier: randomId("a"), name: "Same domain", domain: `${identifier}.example`, plan: "free" },
    ]) {
      const refused = await expectProblem(await adminCall("org/create", clash), 400, "invalid_request");
      expect(refused.detail).toContain(identifier);
    }
    expect(await count("organisations")).toBe(before);
  });

  it.each([
    { identifier: "has space", name: "N", domain: "n.example", plan: "free" },
    { identifier: "ok1", name: "", domain: "n.example", plan: "free" },
    { identifier: "ok1", name: "N\u0007", domain: "n.example", plan: "free" },
    { identifier: "ok1", name: "N", domain: "localhost", plan: "free" },
    { identifier: "ok1", name: "N", domain: "n.example", plan: "gold" },
    { identifier: "ok1", name: "N", domain: "n.example" },
    { identifier: 7, name: "N", domain: "n.example", plan: "free" },
  ])("org:create refuses bad input %# with a 400 and writes nothing", async (body) => {
    const before = await count("organisations");
    await expectProblem(await adminCall("org/create", body), 400, "invalid_request");
    expect(await count("organisations")).toBe(before);
  });

  it("org:list pages through every organisation with its member count (audited org.list)", async () => {
    const made = await newOrganisation();
    await ok(
      await adminCall("member/create", {
        org: made.identifier,
        email: `a@${made.domain}`,
        role: "user",
        password: PASSWORD,
      }),
    );
    const first = await adminCall("org/list", { limit: 2 });
    const page = await ok(first);
    expect(page.organisations).toHaveLength(2);
    expect(page.next).toBe(page.organisations[1].id);
    expect(await auditedOnce(first)).toMatchObject({
      event: "org.list",
      detail: { actor: "operator", after: 0, count: 2 },
    });
    const all = await ok(await adminCall("org/list", { after: made.id - 1 }));
    expect(all.organisations[0]).toMatchObject({ identifier: made.identifier, members: 1, plan: "professional" });
    expect(all.next).toBeNull();
    await expectProblem(await adminCall("org/list", { limit: 0 }), 400, "invalid_request");
    await expectProblem(await adminCall("org/list", { after: "3" }), 400, "invalid_request");
  });

  it("org:plan and org:suspend refuse unknown organisations (404) and bad plans (400)", async () => {
    await expectProblem(await adminCall("org/plan", { org: "nobody-here", plan: "free" }), 404, "not_found");
    await expectProblem(await adminCall("org/suspend", { org: "nobody-here" }), 404, "not_found");
    const made = await newOrganisation();
    await expectProblem(await adminCall("org/plan", { org: made.identifier, plan: "gold" }), 400, "invalid_request");
    const { organisations } = await ok(await adminCall("org/list", { after: made.id - 1, limit: 1 }));
    expect(organisations[0].plan).toBe("professional");
  });
});

describe("members", () => {
  it("member:create hashes the password in the gateway: the member logs in with it (audited member.create)", async () => {
    const made = await newOrganisation();
    const email = `ann@${made.domain}`;
    const response = await adminCall("member/create", {
      org: made.identifier,
      email: ` Ann@${made.domain.toUpperCase()} `,
      role: "user",
      scopes: "deleteGrids, deleteGrids",
      password: PASSWORD,
    });
    const { member } = await ok(response);
    expect(member).toMatchObject({ email, role: "user", scopes: "deleteGrids", status: "active" });
    expect(member.identifier).toMatch(/^[a-z0-9]{6}$/);
    expect(await auditedOnce(response)).toMatchObject({
      event: "member.create",
      member_id: member.id,
      organisation_id: made.id,
      detail: {
        actor: "operator",
        organisation: made.identifier,
        member: member.identifier,
        role: "user",
        scopes: "deleteGrids",
      },
    });
    const stored = await env.DB.prepare("SELECT password_hash FROM members WHERE id = ?")
      .bind(member.id)
      .first<string>("password_hash");
    expect(stored).toMatch(/^\$pbkdf2-sha256\$/);
    expect(JSON.stringify(await auditRowsOf(response.headers.get("X-Request-Id")!))).not.toContain(PASSWORD);
    const login = await postLogin({ email, password: PASSWORD });
    expect(login.status).toBe(200);
    expect((await login.json<{ scope: string }>()).scope).toBe("user deleteGrids");

    await expectProblem(
      await adminCall("member/create", { org: made.identifier, email, role: "builder", password: PASSWORD }),
      400,
      "invalid_request",
    );
    await expectProblem(
      await adminCall("member/create", { org: "nobody-here", email, role: "user", password: PASSWORD }),
      404,
      "not_found",
    );
  });

  it.each([
    { email: "no-at-sign", role: "user", password: PASSWORD },
    { email: "b@x.example", role: "organisation", password: PASSWORD },
    { email: "b@x.example", role: "none", password: PASSWORD },
    { email: "b@x.example", role: "none", scopes: "getGrids architect", password: PASSWORD },
    { email: "b@x.example", role: "user", password: "too short" },
    { email: "b@x.example", role: "user", password: "x".repeat(1025) },
    { email: "b@x.example", role: "user" },
  ])("member:create refuses bad input %# with a 400 and writes nothing", async (fields) => {
    const made = await newOrganisation();
    const before = await count("members");
    await expectProblem(await adminCall("member/create", { org: made.identifier, ...fields }), 400, "invalid_request");
    expect(await count("members")).toBe(before);
  });

  it("member:import writes a batch all or none, checks without writing, and audits each member", async () => {
    const made = await newOrganisation();
    const rows = [
      { email: `a@${made.domain}`, role: "user", scopes: "", bcrypt_hash: BCRYPT },
      { email: `b@${made.domain}`, role: "none", scopes: "getGrids", bcrypt_hash: BCRYPT },
    ];
    const check = await ok(await adminCall("member/import", { org: made.identifier, members: rows, check: true }));
    expect(check).toEqual({ existing: [] });
    const response = await adminCall("member/import", { org: made.identifier, members: rows });
    const { imported } = await ok(response);
    expect(imported.map((row: { email: string }) => row.email)).toEqual(rows.map((row) => row.email));
    const events = await auditRowsOf(response.headers.get("X-Request-Id")!, 2);
    expect(events.map((row) => [row.event, row.member_id, JSON.parse(row.detail!).import])).toEqual(
      imported.map((row: { id: number }) => ["member.create", row.id, true]),
    );
    expect((await postLogin({ email: rows[1]!.email, password: BCRYPT_PASSWORD })).status).toBe(200);

    const again = [{ email: `c@${made.domain}`, role: "user", bcrypt_hash: BCRYPT }, rows[0]];
    expect(await ok(await adminCall("member/import", { org: made.identifier, members: again, check: true }))).toEqual({
      existing: [rows[0]!.email],
    });
    const before = await count("members");
    await expectProblem(
      await adminCall("member/import", { org: made.identifier, members: again }),
      400,
      "invalid_request",
    );
    const invalid = await expectProblem(
      await adminCall("member/import", {
        org: made.identifier,
        members: [
          { email: `d@${made.domain}`, role: "user", bcrypt_hash: BCRYPT },
          { email: `d@${made.domain}`, role: "user", bcrypt_hash: BCRYPT },
          { email: `e@${made.domain}`, role: "", bcrypt_hash: BCRYPT },
          { email: `f@${made.domain}`, role: "user", bcrypt_hash: "not-a-hash" },
        ],
      }),
      400,
      "invalid_request",
    );
    expect(invalid.detail).toMatch(
      /^3 invalid row\(s\), nothing imported: row 1: .*already row 0; row 2: .*role or .*; row 3: .*bcrypt/,
    );
    for (const members of [[], "rows", Array.from({ length: 501 }, () => ({}))])
      await expectProblem(await adminCall("member/import", { org: made.identifier, members }), 400, "invalid_request");
    expect(await count("members")).toBe(before);
  });

  it("member:list pages through an organisation's members, never their password hashes (audited member.list)", async () => {
    const made = await newOrganisation();
    for (const name of ["a", "b", "c"])
      await ok(
        await adminCall("member/create", {
          org: made.identifier,
          email: `${name}@${made.domain}`,
          role: "user",
          password: PASSWORD,
        }),
      );
    const first = await adminCall("member/list", { org: made.identifier, limit: 2 });
    const page = await ok(first);
    expect(page.members.map((row: { email: string }) => row.email)).toEqual([`a@${made.domain}`, `b@${made.domain}`]);
    expect(JSON.stringify(page)).not.toContain("pbkdf2");
    expect(await auditedOnce(first)).toMatchObject({
      event: "member.list",
      organisation_id: made.id,
      detail: { count: 2 },
    });
    const rest = await ok(await adminCall("member/list", { org: made.identifier, after: page.next }));
    expect(rest).toMatchObject({ members: [{ email: `c@${made.domain}` }], next: null });
    await expectProblem(await adminCall("member/list", { org: "nobody-here" }), 404, "not_found");
  });
});

describe("the values the admin routes and the import file accept", () => {
  it("normalises good values", () => {
    expect(valid.identifier("org", " m7l9hw ")).toBe("m7l9hw");
    expect(valid.domain("domain", " Acme.Example ")).toBe("acme.example");
    expect(valid.email("email", " Alice@Acme.EXAMPLE ")).toBe("alice@acme.example");
    expect(valid.role("role", "none")).toBeNull();
    expect(valid.scopes("scopes", "getGrids, grids getGrids")).toBe("getGrids grids");
    expect(valid.bcryptHash("h", BCRYPT)).toBe(BCRYPT);
    expect(valid.memberId("member_id", " 42 ")).toBe(42);
    expect(valid.memberId("member_id", 42)).toBe(42);
  });

  it.each([
    () => valid.memberId("member_id", "0"),
    () => valid.memberId("member_id", 1.5),
    () => valid.memberId("member_id", "99999999999999999"),
    () => valid.bcryptHash("h", "$2b$03$" + BCRYPT.slice(7)),
    () => valid.bcryptHash("h", "$2b$13$" + BCRYPT.slice(7)),
    () => valid.label("label", "x".repeat(101)),
  ])("refuses bad value %# as a 400", (check) => {
    expect(check).toThrow(GatewayError);
  });

  it("generates 6-character lower-case alphanumeric member identifiers", () => {
    const identifiers = new Set(Array.from({ length: 200 }, valid.newMemberIdentifier));
    for (const identifier of identifiers) expect(identifier).toMatch(/^[a-z0-9]{6}$/);
    expect(identifiers.size).toBeGreaterThan(195);
  });

  it("parses RFC 4180 quoting, CRLF and a BOM", () => {
    expect(parseCsv('\uFEFFa,b\r\n"x, ""y""",\n\nlast,"multi\nline"')).toEqual([
      ["a", "b"],
      ['x, "y"', ""],
      ["last", "multi\nline"],
    ]);
    expect(() => parseCsv('a,"open')).toThrow(/quoted field/);
  });

  it("validates every import row and lists every bad one", () => {
    expect(
      parseImport(
        `email,role,scopes,bcrypt_hash\nAlice@X.example,builder,,${BCRYPT}\nbob@x.example,,"getGrids postGrids",${BCRYPT}\n`,
      ),
    ).toEqual([
      { line: 2, email: "alice@x.example", role: "builder", scopes: "", passwordHash: BCRYPT },
      { line: 3, email: "bob@x.example", role: null, scopes: "getGrids postGrids", passwordHash: BCRYPT },
    ]);
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
