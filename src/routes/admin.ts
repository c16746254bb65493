/** `/authenticate/admin/…`: every `npm run admin` command as one signed request (`ADMIN_SECRET`); the gateway validates, writes D1, revokes and audits. */
import { Hono, type Context } from "hono";
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
import { revokeSessions } from "../revocation/revoke";
import * as admin from "../storage/admin";
import { insertSecretWithinLimit, listLiveSecrets, revokeLiveSecret } from "../storage/dynamic-secrets";
import { auditRequest } from "./audit";
import type { AppEnv } from "./middleware";
import { MAX_LIVE_SECRETS } from "./secrets";

/** Rows one listing or trail page answers, at most. */
const MAX_PAGE = 500;
/** Members one `member/import` request takes, at most (the 16 KiB body holds about 100). */
const MAX_IMPORT_ROWS = 500;

/** What an admin action answers, and the events it audits (none for a dry run). */
interface Outcome {
  answer: Record<string, unknown>;
  events: (Omit<AuditFields, "outcome" | "event"> & { event: OperatorEventName })[];
}

type Action = (c: Context<AppEnv>, body: input.AdminBody) => Promise<Outcome>;

/**
 * The body of a request signed with `ADMIN_SECRET`: 404 when the secret is not set, 413 over 16 KiB, 401 unless the
 * signature matches the route and the body within its window.
 */
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

/**
 * Serves `action` at `POST /authenticate/admin/<path>` for a signed body of `fields`: validated before anything is
 * read or written, answered as JSON (`no-store`), each event audited with the operator as its actor.
 */
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

/** The organisation named by `org` and its member named by `email`; both validated before either is read. */
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

/** `count` new member identifiers that no member holds yet. */
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

/** The event of an action on `member` of `organisation`. */
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

/**
 * Moves an organisation to another plan. When it can no longer use the API (a plan outside `API_PLANS`, or it is
 * suspended) its tokens and sessions are revoked at once; a move between API plans keeps them.
 */
route("org/plan", ["org", "plan"], async (c, body) => {
  const plan = input.plan("plan", input.text(body, "plan"));
  const organisation = await organisationOf(c, body);
  const services = c.get("services");
  await admin.updateOrganisation(services.db, organisation.id, { plan });
  const revoked = !isEligible(services.config, { plan, status: organisation.status });
  if (revoked) await revokeSessions(services, { organisations: [organisation.identifier] });
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
  // Suspending ends every token and session of the organisation's members at once.
  route(path, ["org"], async (c, body) => {
    const organisation = await organisationOf(c, body);
    const services = c.get("services");
    await admin.updateOrganisation(services.db, organisation.id, { status });
    if (status === "suspended") await revokeSessions(services, { organisations: [organisation.identifier] });
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
  const ids = await admin.insertMembers(services.db, organisation.id, [
    { identifier: identifier!, email, passwordHash, role, scopes },
  ]);
  const member = { id: ids.get(identifier!)!, identifier: identifier!, email, role, scopes, status: "active" };
  return {
    answer: { member },
    events: [memberEvent("member.create", organisation, member, { role: role ?? "none", scopes })],
  };
});

/** One `member/import` row, validated; a bad row is reported with its index. */
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

/**
 * Members migrated with their bcrypt hashes, all or none: every row is checked, then the organisation's members;
 * `check: true` only reports the emails already there, writing nothing.
 */
route("member/import", ["org", "members", "check"], async (c, body) => {
  const raw = body.members;
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_IMPORT_ROWS)
    input.invalidInput(`members must be an array of 1–${MAX_IMPORT_ROWS} rows.`);
  const check = body.check === undefined ? false : body.check;
  if (typeof check !== "boolean") input.invalidInput("check must be true or false");
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
  const ids = await admin.insertMembers(services.db, organisation.id, rows);
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
  // Suspending ends every token and session of the member at once.
  route(path, ["org", "email"], async (c, body) => {
    const { organisation, member } = await memberOf(c, body);
    const services = c.get("services");
    await admin.setMemberStatus(services.db, member.id, status);
    if (status === "suspended") await revokeSessions(services, { members: [member.id] });
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

/** Ends every session and access token of a member, found by `org` and `email`, or by `member_id` once deleted. */
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

/** A new password, and every earlier session and access token of the member ended. */
route("member/password", ["org", "email", "password"], async (c, body) => {
  const password = input.password("password", input.text(body, "password"));
  const { organisation, member } = await memberOf(c, body);
  const services = c.get("services");
  const passwordHash = await hashPassword(password, services.config.passwordPepper);
  await admin.setMemberPassword(services.db, member.id, passwordHash, services.now());
  await revokeSessions(services, { members: [member.id] });
  return { answer: { member: memberView(member) }, events: [memberEvent("member.password", organisation, member)] };
});

/** Deletes a member, then ends its sessions and access tokens (its dynamic secrets stay). */
route("member/delete", ["org", "email"], async (c, body) => {
  const { organisation, member } = await memberOf(c, body);
  const services = c.get("services");
  await admin.deleteMember(services.db, member.id);
  await revokeSessions(services, { members: [member.id] });
  return { answer: { member: memberView(member) }, events: [memberEvent("member.delete", organisation, member)] };
});

/**
 * Clears the login back-off of one email (every organisation: the counter is per email), so a locked account can
 * log in again at once. The audit event holds no email (people paste passwords into email fields): whether a lock
 * was cleared and the account's back-off key (SHA-256 of the normalised email), so repeated unlocks can be found.
 */
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

/** A dynamic secret made by the operator (`created_by` null); its value is in this answer only. */
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

/**
 * The audit trail, newest first, a page at a time: `org` (identifier), `member` (identifier, or id for a deleted
 * member), `event` (a name, or a prefix ending in `*`), `since` (ms), `before` (the `next` of the previous page: the
 * last event's `{at, id}`, or where a page that read its fill of objects stopped), `limit`. The trail lives in R2.
 */
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
