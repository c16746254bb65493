// Operators' dynamic secrets (secret:create|list|revoke) and the audit trail's reader (`audit`), through the signed
// admin routes: who made each secret is recorded, and the trail reads back newest first, filtered and paged.
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  adminCall,
  auditRowsOf,
  fakeOrigin,
  gateway,
  newArchitectOrganisation,
  now,
  problem,
  signWithJose,
} from "./helpers";

afterEach(() => vi.restoreAllMocks());

async function ok(response: Response): Promise<Record<string, any>> {
  expect(response.status, await response.clone().text()).toBe(200);
  return response.json();
}

async function expectProblem(response: Response, status: number, code: string): Promise<void> {
  expect(response.status, await response.clone().text()).toBe(status);
  expect((await problem(response)).code).toBe(code);
}

/** The single audit row of a response, its detail parsed. */
async function auditedOnce(response: Response): Promise<Record<string, any>> {
  const rows = await auditRowsOf(response.headers.get("X-Request-Id")!);
  expect(rows).toHaveLength(1);
  return { ...rows[0], detail: JSON.parse(rows[0]!.detail!) };
}

function dynamicGet(organisation: string, member: string, secret: string, kid: string): Promise<Response> {
  const claims = {
    iat: now(),
    memberEntityIdentifier: member,
    organisationEntityIdentifier: organisation,
    scope: "organisation",
    secretType: "dynamic",
  };
  return signWithJose(claims, secret, { kid }).then((token) =>
    gateway("/grids", { headers: { Authorization: `Bearer ${token}` } }),
  );
}

describe("dynamic secrets made by operators", () => {
  it("secret:create returns the secret once, its tokens work, secret:list shows it made by the operator, secret:revoke ends it", async () => {
    fakeOrigin();
    const org = await newArchitectOrganisation("enterprise", "q");
    const created = await adminCall("secret/create", { org: org.identifier, label: "ci" });
    const secret = await ok(created);
    expect(created.headers.get("Cache-Control")).toBe("no-store");
    expect(secret).toMatchObject({ label: "ci", algorithm: "HS256", organisationEntityIdentifier: org.identifier });
    expect(secret.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const row = await auditedOnce(created);
    expect(row).toMatchObject({
      event: "secret.create",
      organisation_id: org.id,
      member_id: null,
      detail: { actor: "operator", organisation: org.identifier, kid: secret.kid },
    });
    expect(JSON.stringify(row)).not.toContain(secret.secret);
    expect((await dynamicGet(org.identifier, org.member, secret.secret, secret.kid)).status).toBe(200);

    const listed = await adminCall("secret/list", { org: org.identifier });
    expect(await ok(listed)).toEqual({
      secrets: [{ kid: secret.kid, label: "ci", created_at: secret.created_at, created_by: null }],
    });
    expect(await auditedOnce(listed)).toMatchObject({ event: "secret.list", detail: { count: 1 } });

    const revoked = await adminCall("secret/revoke", { org: org.identifier, kid: secret.kid });
    expect(await ok(revoked)).toEqual({ organisation: org.identifier, kid: secret.kid });
    expect(await auditedOnce(revoked)).toMatchObject({ event: "secret.revoke", detail: { kid: secret.kid } });
    expect((await dynamicGet(org.identifier, org.member, secret.secret, secret.kid)).status).toBe(401);
    await expectProblem(await adminCall("secret/revoke", { org: org.identifier, kid: secret.kid }), 404, "not_found");
  });

  it("refuses bad input (400), unknown organisations (404) and an eleventh live secret (409)", async () => {
    const org = await newArchitectOrganisation("enterprise", "q");
    await expectProblem(
      await adminCall("secret/create", { org: org.identifier, label: "x\n" }),
      400,
      "invalid_request",
    );
    await expectProblem(await adminCall("secret/create", { org: org.identifier, label: 5 }), 400, "invalid_request");
    await expectProblem(await adminCall("secret/revoke", { org: org.identifier, kid: "a b" }), 400, "invalid_request");
    await expectProblem(await adminCall("secret/create", { org: "nobody-here" }), 404, "not_found");
    await expectProblem(await adminCall("secret/list", { org: "nobody-here" }), 404, "not_found");
    for (let i = 0; i < 10; i++) await ok(await adminCall("secret/create", { org: org.identifier }));
    await expectProblem(await adminCall("secret/create", { org: org.identifier }), 409, "secret_limit_reached");
  });

  it("a secret an architect makes through the API is audited with that member as its actor", async () => {
    const org = await newArchitectOrganisation("enterprise", "q");
    const response = await gateway("/authenticate/secrets", {
      method: "POST",
      headers: { Authorization: `Bearer ${org.token}` },
    });
    expect(response.status).toBe(201);
    const { kid } = await response.json<{ kid: string }>();
    expect(await auditedOnce(response)).toMatchObject({
      event: "secret.create",
      member_id: org.memberId,
      organisation_id: org.id,
      detail: { actor: "member", kid },
    });
    const revoked = await gateway(`/authenticate/secrets/${kid}`, {
      method: "DELETE",
      headers: { Authorization: `Bearer ${org.token}` },
    });
    expect(revoked.status).toBe(204);
    expect(await auditedOnce(revoked)).toMatchObject({
      event: "secret.revoke",
      member_id: org.memberId,
      detail: { actor: "member", kid },
    });
  });
});

describe("the audit trail's reader", () => {
  /** An organisation with a member, suspended and activated again: five operator events in order. */
  async function history() {
    const identifier = `h${crypto.randomUUID().slice(0, 8)}`;
    const domain = `${identifier}.example`;
    const requests: Response[] = [];
    const step = async (route: string, body: Record<string, unknown>) => {
      const response = await adminCall(route, body);
      expect(response.status, await response.clone().text()).toBe(200);
      requests.push(response);
      await auditRowsOf(response.headers.get("X-Request-Id")!);
      return response.json<Record<string, any>>();
    };
    const { organisation } = await step("org/create", { identifier, name: "History", domain, plan: "professional" });
    const { member } = await step("member/create", {
      org: identifier,
      email: `m@${domain}`,
      role: "user",
      password: "a-long-enough-password",
    });
    await step("member/suspend", { org: identifier, email: `m@${domain}` });
    await step("member/activate", { org: identifier, email: `m@${domain}` });
    await step("org/plan", { org: identifier, plan: "enterprise" });
    return { identifier, organisationId: organisation.id as number, member, requests };
  }

  it("lists an organisation's events newest first, each admin action as its own event, and records the read", async () => {
    const { identifier, organisationId, member, requests } = await history();
    const read = await adminCall("audit", { org: identifier });
    const { events, next } = await ok(read);
    expect(next).toBeNull();
    expect(events.map((event: Record<string, unknown>) => [event.event, event.request_id])).toEqual(
      [
        ["org.plan", requests[4]!],
        ["member.activate", requests[3]!],
        ["member.suspend", requests[2]!],
        ["member.create", requests[1]!],
        ["org.create", requests[0]!],
      ].map(([name, response]) => [name, (response as Response).headers.get("X-Request-Id")]),
    );
    expect(events[1]).toMatchObject({
      organisation: identifier,
      organisation_id: organisationId,
      member: member.identifier,
      member_id: member.id,
      outcome: "success",
      detail: { actor: "operator", from: "suspended" },
    });
    expect(await auditedOnce(read)).toMatchObject({
      event: "audit.read",
      organisation_id: organisationId,
      detail: { count: 5 },
    });
  });

  it("filters by member (identifier or id), event (name or prefix*) and time, and pages with next", async () => {
    const { identifier, member, requests } = await history();
    const names = (answer: Record<string, any>) => answer.events.map((event: { event: string }) => event.event);
    expect(names(await ok(await adminCall("audit", { member: member.identifier })))).toEqual([
      "member.activate",
      "member.suspend",
      "member.create",
    ]);
    expect(names(await ok(await adminCall("audit", { member: String(member.id), event: "member.suspend" })))).toEqual([
      "member.suspend",
    ]);
    expect(names(await ok(await adminCall("audit", { org: identifier, event: "org.*" })))).toEqual([
      "org.plan",
      "org.create",
    ]);
    const { at } = (await auditRowsOf(requests[3]!.headers.get("X-Request-Id")!))[0]!;
    const recent = names(await ok(await adminCall("audit", { org: identifier, event: "member.*", since: at })));
    expect(recent).toEqual(["member.activate"]);

    const first = await ok(await adminCall("audit", { member: member.id, limit: 2 }));
    expect(names(first)).toEqual(["member.activate", "member.suspend"]);
    expect(first.next).toEqual({ at: first.events[1].at, id: first.events[1].id });
    const second = await ok(await adminCall("audit", { member: member.id, limit: 2, before: first.next }));
    expect(names(second)).toEqual(["member.create"]);
    expect(second.next).toBeNull();
  });

  it("refuses unknown subjects (404) and bad filters (400)", async () => {
    await expectProblem(await adminCall("audit", { org: "nobody-here" }), 404, "not_found");
    await expectProblem(await adminCall("audit", { member: "nobody1" }), 404, "not_found");
    for (const bad of [
      { event: "Member.Create" },
      { event: "*" },
      { since: "1h" },
      { since: -1 },
      { limit: 501 },
      { before: { at: 1 } },
      { before: 5 },
      { member: true },
    ])
      await expectProblem(await adminCall("audit", bad), 400, "invalid_request");
  });
});
