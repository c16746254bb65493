/** `/authenticate/admin/…`: the `npm run admin` commands as signed requests (docs/operating.md § Admin commands). */
import type { Context } from "hono";
import { Hono } from "hono/tiny";
import { ADMIN_SIGNATURE_HEADER, verifyAdminRequest } from "../admin/signature";
import * as input from "../admin/inputs";
import { readAuditEvents } from "../audit/read";
import type { AuditFields, OperatorEventName } from "../audit/trail";
import { hashPassword } from "../credentials/password";
import { throttleKey } from "../credentials/throttle";
import { generateKid, generateSecret, sealSecret } from "../dynamic-secrets/crypto";
import { GatewayError } from "../gateway-error";
import { readText } from "../http/body";
import { methodNotAllowed } from "../http/problem";
import { isEligible } from "../policy/eligibility";
import type { WrittenSubjects } from "../revocation/list";
import { rememberWrites, revokeSessions } from "../revocation/revoke";
import * as admin from "../storage/admin";
import { insertSecretWithinLimit, listLiveSecrets, revokeLiveSecret } from "../storage/dynamic-secrets";
import * as sso from "../storage/sso";
import { ssoSecretOwner } from "../sso/logins";
import { auditRequest } from "./audit";
import type { AppEnv } from "./middleware";
import { MAX_LIVE_SECRETS } from "./secrets";
import { SSO_CALLBACK_PATH } from "./sso";

const MAX_PAGE = 500;
const MAX_IMPORT_ROWS = 500;

/** What an admin action answers, and the events it audits (none for a dry run). */
interface Outcome {
  answer: Record<string, unknown>;
  events: (Omit<AuditFields, "outcome" | "event"> & { event: OperatorEventName })[];
}

type Action = (c: Context<AppEnv>, body: input.AdminBody) => Promise<Outcome>;

/** The body of a request signed with `ADMIN_SECRET`: 404 without the secret, 413 over 16 KiB, 401 unless signed. */
async function readSigned(c: Context<AppEnv>): Promise<string> {
  const services = c.get("services");
  const secret = services.config.adminSecret;
  if (!secret) throw new GatewayError("not_found", "No such gateway route.");
  const text = await readText(c.req.raw);
  const signedAt = await verifyAdminRequest(
    secret,
    c.req.header(ADMIN_SIGNATURE_HEADER) ?? null,
    c.req.path,
    text,
    Math.floor(services.now() / 1000),
  );
  if (signedAt === undefined)
    throw new GatewayError("invalid_token", `${ADMIN_SIGNATURE_HEADER} is missing, stale or does not match.`);
  return text;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return input.invalidInput("The body must be JSON.");
  }
}

/** Operator routes; 404 unless `ADMIN_SECRET` is set. Not part of the public OpenAPI document. */
export const adminRoutes = new Hono<AppEnv>();

/** Serves `action` at `POST /authenticate/admin/<path>`, auditing each of its events with the operator as actor. */
function route(path: string, fields: readonly string[], action: Action): void {
  adminRoutes.post(`/${path}`, async (c) => {
    const body = input.adminBody(parseJson(await readSigned(c)), fields);
    const { answer, events } = await action(c, body);
    for (const { detail, ...event } of events)
      auditRequest(c, { ...event, outcome: "success", detail: { actor: "operator", ...detail } });
    c.header("Cache-Control", "no-store");
    return c.json(answer);
  });
  adminRoutes.all(`/${path}`, methodNotAllowed("POST"));
}

async function organisationOf(c: Context<AppEnv>, body: input.AdminBody): Promise<admin.OrganisationRow> {
  const identifier = input.identifier("org", input.text(body, "org"));
  const organisation = await admin.findOrganisation(c.get("services").db, identifier);
  if (!organisation) throw new GatewayError("not_found", `No organisation ${identifier}.`);
  return organisation;
}

async function memberOf(
  c: Context<AppEnv>,
  body: input.AdminBody,
): Promise<{ organisation: admin.OrganisationRow; member: admin.MemberRow }> {
  const email = input.email("email", input.text(body, "email"));
  const organisation = await organisationOf(c, body);
  const member = await admin.findMember(c.get("services").db, organisation.id, email);
  if (!member) throw new GatewayError("not_found", `No member ${email} in organisation ${organisation.identifier}.`);
  return { organisation, member };
}

async function freshIdentifiers(c: Context<AppEnv>, organisationId: number, count: number): Promise<string[]> {
  for (;;) {
    const identifiers = new Set<string>();
    while (identifiers.size < count) identifiers.add(input.newMemberIdentifier());
    const taken = await admin.memberConflicts(c.get("services").db, organisationId, [], [...identifiers]);
    if (taken.identifiers.length === 0) return [...identifiers];
  }
}

function organisationView(organisation: admin.OrganisationRow) {
  const { id, identifier, name, domain, plan, status, createdAt } = organisation;
  return { id, identifier, name, domain, plan, status, created_at: createdAt };
}

function memberView(member: admin.MemberRow) {
  const { id, identifier, email, role, scopes, status, createdAt } = member;
  return { id, identifier, email, role, scopes, status, created_at: createdAt };
}

function memberEvent(
  event: OperatorEventName,
  organisation: admin.OrganisationRow,
  member: Pick<admin.MemberRow, "id" | "identifier">,
  detail: Record<string, string | number | boolean> = {},
): Outcome["events"][number] {
  return {
    event,
    memberId: member.id,
    organisationId: organisation.id,
    detail: { organisation: organisation.identifier, member: member.identifier, ...detail },
  };
}

route("org/create", ["identifier", "name", "domain", "plan"], async (c, body) => {
  const fields = {
    identifier: input.identifier("identifier", input.text(body, "identifier")),
    name: input.displayName("name", input.text(body, "name")),
    domain: input.domain("domain", input.text(body, "domain")),
    plan: input.plan("plan", input.text(body, "plan")),
  };
  const { db } = c.get("services");
  const taken = await admin.organisationsHolding(db, fields.identifier, fields.domain);
  if (taken.length > 0)
    input.invalidInput(
      `Identifier or domain already used by organisation ${taken.map((row) => `${row.identifier} (${row.domain})`).join(", ")}.`,
    );
  const organisation = await admin.insertOrganisation(db, fields);
  return {
    answer: { organisation: organisationView(organisation) },
    events: [
      {
        event: "org.create",
        organisationId: organisation.id,
        detail: { organisation: organisation.identifier, plan: organisation.plan },
      },
    ],
  };
});

route("org/list", ["after", "limit"], async (c, body) => {
  const after = input.count(body, "after", 0, Number.MAX_SAFE_INTEGER, 0);
  const limit = input.count(body, "limit", 1, MAX_PAGE, MAX_PAGE);
  const rows = await admin.listOrganisations(c.get("services").db, after, limit);
  return {
    answer: {
      organisations: rows.map((row) => ({ ...organisationView(row), members: row.members })),
      next: rows.length === limit ? rows.at(-1)!.id : null,
    },
    events: [{ event: "org.list", detail: { after, count: rows.length } }],
  };
});

route("org/plan", ["org", "plan"], async (c, body) => {
  const plan = input.plan("plan", input.text(body, "plan"));
  const organisation = await organisationOf(c, body);
  const services = c.get("services");
  const writes = services.d1.session("first-primary");
  await admin.updateOrganisation(writes.db, organisation.id, { plan });
  const revoked = !isEligible(services.config, { plan, status: organisation.status });
  const subjects = { organisations: [organisation.identifier] };
  await (revoked ? revokeSessions(services, subjects, writes) : rememberWrites(services, subjects, writes));
  return {
    answer: { organisation: organisation.identifier, from: organisation.plan, to: plan, revoked },
    events: [
      {
        event: "org.plan",
        organisationId: organisation.id,
        detail: { organisation: organisation.identifier, from: organisation.plan, to: plan, revoked },
      },
    ],
  };
});

for (const [path, status] of [
  ["org/suspend", "suspended"],
  ["org/activate", "active"],
] as const) {
  route(path, ["org"], async (c, body) => {
    const organisation = await organisationOf(c, body);
    const services = c.get("services");
    const writes = services.d1.session("first-primary");
    await admin.updateOrganisation(writes.db, organisation.id, { status });
    const subjects = { organisations: [organisation.identifier] };
    if (status === "suspended") await revokeSessions(services, subjects, writes);
    else await rememberWrites(services, subjects, writes);
    return {
      answer: { organisation: organisation.identifier, from: organisation.status, to: status },
      events: [
        {
          event: status === "suspended" ? "org.suspend" : "org.activate",
          organisationId: organisation.id,
          detail: { organisation: organisation.identifier, from: organisation.status },
        },
      ],
    };
  });
}

/** A single sign-on connection as an operator sees it: never its secret. */
function connectionView(
  connection: Pick<sso.SsoConnection, "issuer" | "clientId" | "domains" | "required" | "createdAt" | "updatedAt">,
) {
  const { issuer, clientId, domains, required, createdAt, updatedAt } = connection;
  return { issuer, client_id: clientId, domains, required, created_at: createdAt, updated_at: updatedAt };
}

/** Whose reads a connection change concerns: the organisation, its own domain and every domain routed before or after. */
function ssoSubjects(
  organisation: { identifier: string; domain: string },
  before: readonly string[],
  after: readonly string[],
): WrittenSubjects {
  return { organisations: [organisation.identifier], domains: [organisation.domain, ...before, ...after] };
}

// A new connection needs issuer, client_id and client_secret; a change keeps what it omits (docs/sso.md § Connecting an organisation).
route("org/sso/set", ["org", "issuer", "client_id", "client_secret", "domains", "required"], async (c, body) => {
  const issuer = input.optional(body, "issuer", input.issuer);
  const clientId = input.optional(body, "client_id", input.clientId);
  const clientSecret = input.optional(body, "client_secret", input.clientSecret);
  const domains = input.domains(body, "domains");
  const required = input.flag(body, "required");
  const organisation = await organisationOf(c, body);
  const services = c.get("services");
  const before = await sso.connectionOf(services.db, organisation.id);
  if (!before && (issuer === undefined || clientId === undefined || clientSecret === undefined))
    input.invalidInput("A new connection needs issuer, client_id and client_secret.");
  const change = {
    issuer: issuer ?? before!.issuer,
    clientId: clientId ?? before!.clientId,
    clientSecret:
      clientSecret === undefined
        ? before!.clientSecret
        : await sealSecret(
            await services.dynamicSecrets.sealingKey(),
            ssoSecretOwner(organisation.identifier),
            clientSecret,
          ),
    required: required ?? before?.required ?? false,
    domains: domains ?? before?.domains ?? [organisation.domain],
  };
  const taken = await sso.domainsRoutedElsewhere(services.db, organisation.id, change.domains);
  if (taken.length > 0)
    input.invalidInput(
      `Already routed to another organisation: ${taken.map((row) => `${row.domain} (${row.organisation})`).join(", ")}.`,
    );
  const writes = services.d1.session("first-primary");
  const { createdAt, updatedAt, forgotten } = await sso.writeConnection(writes.db, organisation.id, change);
  await rememberWrites(services, ssoSubjects(organisation, before?.domains ?? [], change.domains), writes);
  return {
    answer: {
      organisation: organisation.identifier,
      created: !before,
      connection: connectionView({ ...change, createdAt, updatedAt }),
      forgotten,
      redirect_uri: new URL(SSO_CALLBACK_PATH, c.req.url).href,
    },
    events: [
      {
        event: "org.sso.set",
        organisationId: organisation.id,
        detail: {
          organisation: organisation.identifier,
          issuer: change.issuer,
          client_id: change.clientId,
          domains: change.domains.join(","),
          required: change.required,
          created: !before,
          credential: clientSecret === undefined ? "kept" : "new",
          forgotten,
        },
      },
    ],
  };
});

route("org/sso/show", ["org"], async (c, body) => {
  const organisation = await organisationOf(c, body);
  const connection = await sso.connectionRecord(c.get("services").db, organisation.id);
  return {
    answer: {
      organisation: organisation.identifier,
      connection: connection ? { ...connectionView(connection), pinned: connection.pinned } : null,
    },
    events: [
      {
        event: "org.sso.show",
        organisationId: organisation.id,
        detail: { organisation: organisation.identifier, connected: connection !== undefined },
      },
    ],
  };
});

/** Removes a connection and its domains and forgets the members' identities at its provider; 404 when there is none. */
route("org/sso/remove", ["org"], async (c, body) => {
  const organisation = await organisationOf(c, body);
  const services = c.get("services");
  const connection = await sso.connectionOf(services.db, organisation.id);
  if (!connection)
    throw new GatewayError("not_found", `Organisation ${organisation.identifier} has no single sign-on connection.`);
  const writes = services.d1.session("first-primary");
  const forgotten = await sso.deleteConnection(writes.db, organisation.id);
  await rememberWrites(services, ssoSubjects(organisation, connection.domains, []), writes);
  return {
    answer: { organisation: organisation.identifier, removed: connectionView(connection), forgotten },
    events: [
      {
        event: "org.sso.remove",
        organisationId: organisation.id,
        detail: { organisation: organisation.identifier, issuer: connection.issuer, forgotten },
      },
    ],
  };
});

route("member/create", ["org", "email", "role", "scopes", "password"], async (c, body) => {
  const email = input.email("email", input.text(body, "email"));
  const role = input.role("role", input.text(body, "role"));
  const scopes = input.scopes("scopes", input.text(body, "scopes"));
  if (role === null && scopes === "") input.invalidInput("A member needs a role or scopes.");
  const password = input.password("password", input.text(body, "password"));
  const organisation = await organisationOf(c, body);
  const services = c.get("services");
  const existing = await admin.memberConflicts(services.db, organisation.id, [email], []);
  if (existing.emails.length > 0) input.invalidInput(`${email} is already a member of ${organisation.identifier}.`);
  const [identifier] = await freshIdentifiers(c, organisation.id, 1);
  const passwordHash = await hashPassword(password, services.config.passwordPepper);
  const writes = services.d1.session("first-primary");
  const ids = await admin.insertMembers(writes.db, organisation.id, [
    { identifier: identifier!, email, passwordHash, role, scopes },
  ]);
  await rememberWrites(services, { accounts: [await throttleKey(email)] }, writes);
  const member = { id: ids.get(identifier!)!, identifier: identifier!, email, role, scopes, status: "active" };
  return {
    answer: { member },
    events: [memberEvent("member.create", organisation, member, { role: role ?? "none", scopes })],
  };
});

function importRow(raw: unknown, index: number): admin.NewMember & { index: number } {
  const row = input.adminBody(raw, ["email", "role", "scopes", "bcrypt_hash"]);
  const parsed = {
    index,
    identifier: "",
    email: input.email("email", input.text(row, "email")),
    role: input.role("role", input.text(row, "role"), true),
    scopes: input.scopes("scopes", input.text(row, "scopes")),
    passwordHash: input.bcryptHash("bcrypt_hash", input.text(row, "bcrypt_hash")),
  };
  if (parsed.role === null && parsed.scopes === "") input.invalidInput("a member needs a role or at least one scope");
  return parsed;
}

route("member/import", ["org", "members", "check"], async (c, body) => {
  const raw = body.members;
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_IMPORT_ROWS)
    input.invalidInput(`members must be an array of 1–${MAX_IMPORT_ROWS} rows.`);
  const check = input.flag(body, "check") ?? false;
  const rows: ReturnType<typeof importRow>[] = [];
  const errors: string[] = [];
  const seen = new Map<string, number>();
  raw.forEach((entry, index) => {
    try {
      const row = importRow(entry, index);
      const previous = seen.get(row.email);
      if (previous !== undefined) input.invalidInput(`${row.email} is already row ${previous}`);
      seen.set(row.email, index);
      rows.push(row);
    } catch (error) {
      if (!(error instanceof GatewayError)) throw error;
      errors.push(`row ${index}: ${error.message}`);
    }
  });
  if (errors.length > 0)
    input.invalidInput(`${errors.length} invalid row(s), nothing imported: ${errors.slice(0, 20).join("; ")}`);
  const organisation = await organisationOf(c, body);
  const services = c.get("services");
  const { emails: existing } = await admin.memberConflicts(
    services.db,
    organisation.id,
    rows.map((row) => row.email),
    [],
  );
  if (check) return { answer: { existing }, events: [] };
  if (existing.length > 0)
    input.invalidInput(`Already members of ${organisation.identifier}, nothing imported: ${existing.join(", ")}.`);
  const identifiers = await freshIdentifiers(c, organisation.id, rows.length);
  rows.forEach((row, index) => (row.identifier = identifiers[index]!));
  const writes = services.d1.session("first-primary");
  const ids = await admin.insertMembers(writes.db, organisation.id, rows);
  const accounts = await Promise.all(rows.map((row) => throttleKey(row.email)));
  await rememberWrites(services, { accounts }, writes);
  const imported = rows.map((row) => ({ id: ids.get(row.identifier)!, identifier: row.identifier, email: row.email }));
  return {
    answer: { imported },
    events: imported.map((member) => memberEvent("member.create", organisation, member, { import: true })),
  };
});

route("member/list", ["org", "after", "limit"], async (c, body) => {
  const after = input.count(body, "after", 0, Number.MAX_SAFE_INTEGER, 0);
  const limit = input.count(body, "limit", 1, MAX_PAGE, MAX_PAGE);
  const organisation = await organisationOf(c, body);
  const rows = await admin.listMembers(c.get("services").db, organisation.id, after, limit);
  return {
    answer: { members: rows.map(memberView), next: rows.length === limit ? rows.at(-1)!.id : null },
    events: [
      {
        event: "member.list",
        organisationId: organisation.id,
        detail: { organisation: organisation.identifier, after, count: rows.length },
      },
    ],
  };
});

for (const [path, status] of [
  ["member/suspend", "suspended"],
  ["member/activate", "active"],
] as const) {
  route(path, ["org", "email"], async (c, body) => {
    const { organisation, member } = await memberOf(c, body);
    const services = c.get("services");
    const writes = services.d1.session("first-primary");
    await admin.setMemberStatus(writes.db, member.id, status);
    if (status === "suspended") await revokeSessions(services, { members: [member.id] }, writes);
    else await rememberWrites(services, { members: [member.id] }, writes);
    return {
      answer: { member: memberView({ ...member, status }), from: member.status },
      events: [
        memberEvent(status === "suspended" ? "member.suspend" : "member.activate", organisation, member, {
          from: member.status,
        }),
      ],
    };
  });
}

route("member/sign-out", ["org", "email", "member_id"], async (c, body) => {
  const services = c.get("services");
  if (body.member_id !== undefined) {
    if (body.org !== undefined || body.email !== undefined)
      input.invalidInput("Give either member_id, or org and email.");
    const id = input.memberId("member_id", body.member_id);
    await revokeSessions(services, { members: [id] });
    return { answer: { member_id: id }, events: [{ event: "member.sign-out", memberId: id }] };
  }
  const { organisation, member } = await memberOf(c, body);
  await revokeSessions(services, { members: [member.id] });
  return { answer: { member: memberView(member) }, events: [memberEvent("member.sign-out", organisation, member)] };
});

route("member/password", ["org", "email", "password"], async (c, body) => {
  const password = input.password("password", input.text(body, "password"));
  const { organisation, member } = await memberOf(c, body);
  const services = c.get("services");
  const passwordHash = await hashPassword(password, services.config.passwordPepper);
  const writes = services.d1.session("first-primary");
  await admin.setMemberPassword(writes.db, member.id, passwordHash, services.now());
  await revokeSessions(services, { members: [member.id] }, writes);
  return { answer: { member: memberView(member) }, events: [memberEvent("member.password", organisation, member)] };
});

route("member/delete", ["org", "email"], async (c, body) => {
  const { organisation, member } = await memberOf(c, body);
  const services = c.get("services");
  const writes = services.d1.session("first-primary");
  await admin.deleteMember(writes.db, member.id);
  await revokeSessions(services, { members: [member.id] }, writes);
  return { answer: { member: memberView(member) }, events: [memberEvent("member.delete", organisation, member)] };
});

route("member/unlock", ["email"], async (c, body) => {
  const email = input.email("email", input.text(body, "email"));
  const services = c.get("services");
  const account = await throttleKey(email);
  const cleared = await services.throttle.unlock(account);
  const unlocked = {
    failures: cleared?.failures ?? 0,
    wasLocked: cleared !== undefined && cleared.lockedUntil > services.now(),
  };
  return { answer: { unlocked }, events: [{ event: "member.unlock", detail: { ...unlocked, account } }] };
});

route("secret/create", ["org", "label"], async (c, body) => {
  const label = input.label("label", input.text(body, "label"));
  const organisation = await organisationOf(c, body);
  const services = c.get("services");
  const key = await services.dynamicSecrets.sealingKey();
  const kid = generateKid();
  const secret = generateSecret();
  const createdAt = Math.floor(services.now() / 1000);
  const ciphertext = await sealSecret(key, { organisation: organisation.identifier, kid }, secret);
  const row = { kid, organisationId: organisation.id, ciphertext, label, createdBy: null, createdAt };
  if (!(await insertSecretWithinLimit(services.db, row, MAX_LIVE_SECRETS)))
    throw new GatewayError(
      "secret_limit_reached",
      `An organisation holds at most ${MAX_LIVE_SECRETS} live secrets; revoke one first.`,
    );
  await services.dynamicSecrets.afterCreated(c.get("log"), organisation.identifier);
  return {
    answer: {
      kid,
      secret,
      label,
      algorithm: "HS256",
      organisationEntityIdentifier: organisation.identifier,
      created_at: createdAt,
    },
    events: [
      {
        event: "secret.create",
        organisationId: organisation.id,
        detail: { organisation: organisation.identifier, kid },
      },
    ],
  };
});

route("secret/list", ["org"], async (c, body) => {
  const organisation = await organisationOf(c, body);
  const secrets = await listLiveSecrets(c.get("services").db, organisation.id);
  return {
    answer: {
      secrets: secrets.map((s) => ({ kid: s.kid, label: s.label, created_at: s.createdAt, created_by: s.createdBy })),
    },
    events: [
      {
        event: "secret.list",
        organisationId: organisation.id,
        detail: { organisation: organisation.identifier, count: secrets.length },
      },
    ],
  };
});

route("secret/revoke", ["org", "kid"], async (c, body) => {
  const kid = input.identifier("kid", input.text(body, "kid"));
  const organisation = await organisationOf(c, body);
  const services = c.get("services");
  if (!(await revokeLiveSecret(services.db, organisation.id, kid)))
    throw new GatewayError("not_found", `Organisation ${organisation.identifier} has no live secret ${kid}.`);
  await services.dynamicSecrets.afterRevoked(c.get("log"), organisation.identifier);
  return {
    answer: { organisation: organisation.identifier, kid },
    events: [
      {
        event: "secret.revoke",
        organisationId: organisation.id,
        detail: { organisation: organisation.identifier, kid },
      },
    ],
  };
});

const EVENT_FILTER = /^[a-z][a-z0-9._-]{0,63}\*?$/;
/** An event id (a UUIDv7), or empty in a `next` that resumes after a time. */
const EVENT_ID = /^[0-9a-f-]{0,36}$/;

route("audit", ["org", "member", "event", "since", "before", "limit"], async (c, body) => {
  const event = input.text(body, "event");
  if (event !== undefined && !EVENT_FILTER.test(event))
    input.invalidInput("event must be an event name such as member.create, or a prefix ending in * (member.*)");
  const since = body.since === undefined ? undefined : input.count(body, "since", 0, Number.MAX_SAFE_INTEGER, 0);
  const before = body.before === undefined ? undefined : input.adminBody(body.before, ["at", "id"]);
  if (before !== undefined && (before.at === undefined || before.id === undefined))
    input.invalidInput("before must be the next of the previous page: {at, id}");
  const beforeId = before === undefined ? undefined : input.text(before, "id");
  if (beforeId !== undefined && !EVENT_ID.test(beforeId)) input.invalidInput("before.id must be an event id");
  const position =
    before === undefined
      ? undefined
      : { at: input.count(before, "at", 0, Number.MAX_SAFE_INTEGER, 0), id: beforeId ?? "" };
  const limit = input.count(body, "limit", 1, MAX_PAGE, 100);
  const member = body.member;
  if (member !== undefined && typeof member !== "string" && typeof member !== "number")
    input.invalidInput("member must be a member identifier or id");
  const isId = typeof member === "number" || (typeof member === "string" && /^\d+$/.test(member));
  const memberIdentifier = member === undefined || isId ? undefined : input.identifier("member", member as string);
  const memberId = isId ? input.memberId("member", member) : undefined;
  const services = c.get("services");
  const organisation = body.org === undefined ? undefined : await organisationOf(c, body);
  let resolvedMemberId = memberId;
  if (memberIdentifier !== undefined) {
    const found = await admin.findMemberByIdentifier(services.db, memberIdentifier);
    if (!found)
      throw new GatewayError("not_found", `No member ${memberIdentifier}; a deleted member is found by its id.`);
    resolvedMemberId = found.id;
  }
  const { events, next } = await readAuditEvents(
    { bucket: services.auditBucket, db: services.db },
    { organisationId: organisation?.id, memberId: resolvedMemberId, event, since, before: position, limit },
  );
  return {
    answer: { events, next },
    events: [
      {
        event: "audit.read",
        organisationId: organisation?.id,
        detail: { count: events.length, ...(event ? { filter: event } : {}) },
      },
    ],
  };
});
