/** SQL the admin commands run through `wrangler d1 execute`; every value is validated first and quoted here. */
import type { ImportRow } from "./csv";
import type { MemberRole } from "./values";

/** D1 refuses statements over 100 KB; multi-row INSERTs are cut below that. */
export const MAX_STATEMENT_BYTES = 90_000;

/** A SQL literal: NULL, an integer, or a single-quoted string with `'` doubled. */
export function literal(value: string | number | null): string {
  if (value === null) return "NULL";
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new Error(`not an integer: ${value}`);
    return String(value);
  }
  if (value.includes("\0")) throw new Error("NUL in a SQL string");
  return `'${value.replaceAll("'", "''")}'`;
}

/** Rows that would collide with a new organisation. */
export function organisationConflictsQuery(identifier: string, domain: string): string {
  return `SELECT identifier, domain FROM organisations WHERE identifier = ${literal(identifier)} OR domain = ${literal(domain)};`;
}

/** An organisation's id, plan and status by identifier. */
export function organisationQuery(identifier: string): string {
  return `SELECT id, identifier, plan, status FROM organisations WHERE identifier = ${literal(identifier)};`;
}

/** Members of an organisation with any of `emails`, and any member holding one of `identifiers`. */
export function memberConflictsQuery(
  organisation: string,
  emails: readonly string[],
  identifiers: readonly string[],
): string {
  const emailList = emails.map(literal).join(", ") || "NULL";
  const identifierList = identifiers.map(literal).join(", ") || "NULL";
  return (
    `SELECT m.email, m.identifier FROM members m JOIN organisations o ON o.id = m.organisation_id ` +
    `WHERE (o.identifier = ${literal(organisation)} AND m.email IN (${emailList})) OR m.identifier IN (${identifierList});`
  );
}

/** How many of `identifiers` are members of the organisation (to confirm an import landed). */
export function countMembersQuery(organisation: string, identifiers: readonly string[]): string {
  return (
    `SELECT count(*) AS count FROM members m JOIN organisations o ON o.id = m.organisation_id ` +
    `WHERE o.identifier = ${literal(organisation)} AND m.identifier IN (${identifiers.map(literal).join(", ") || "NULL"});`
  );
}

/** A member of one organisation, by email. */
export function memberQuery(organisation: string, email: string): string {
  return (
    `SELECT m.id, m.identifier, m.status FROM members m JOIN organisations o ON o.id = m.organisation_id ` +
    `WHERE o.identifier = ${literal(organisation)} AND m.email = ${literal(email)};`
  );
}

/** Inserts a new organisation (status active). */
export function createOrganisationSql(input: {
  identifier: string;
  name: string;
  domain: string;
  plan: string;
}): string {
  const values = [input.identifier, input.name, input.domain, input.plan].map(literal).join(", ");
  return `INSERT INTO organisations (identifier, name, domain, plan) VALUES (${values});`;
}

/** What a new member row holds besides its organisation. */
export interface NewMember {
  identifier: string;
  email: string;
  passwordHash: string;
  role: MemberRole;
  scopes: string;
}

function memberValues(member: NewMember): string {
  return `(${[member.identifier, member.email, member.passwordHash, member.role, member.scopes].map(literal).join(", ")})`;
}

/**
 * INSERTs for `members` of the organisation `organisation`, as few multi-row statements as D1's
 * statement limit allows (one for a few hundred rows, hence atomic on its own).
 */
export function insertMembersSql(organisation: string, members: readonly NewMember[]): string[] {
  const head =
    "INSERT INTO members (identifier, organisation_id, email, password_hash, role, extra_scopes) SELECT v.column1, o.id, v.column2, v.column3, v.column4, v.column5 FROM (VALUES ";
  const tail = `) AS v JOIN organisations o ON o.identifier = ${literal(organisation)};`;
  const statements: string[] = [];
  let chunk: string[] = [];
  let size = head.length + tail.length;
  for (const values of members.map(memberValues)) {
    if (chunk.length > 0 && size + values.length + 2 > MAX_STATEMENT_BYTES) {
      statements.push(head + chunk.join(", ") + tail);
      chunk = [];
      size = head.length + tail.length;
    }
    chunk.push(values);
    size += values.length + 2;
  }
  if (chunk.length > 0) statements.push(head + chunk.join(", ") + tail);
  return statements;
}

/** The members of an import, each with its generated identifier. */
export function importMembersSql(
  organisation: string,
  rows: readonly ImportRow[],
  identifiers: readonly string[],
): string[] {
  return insertMembersSql(
    organisation,
    rows.map((row, index) => ({
      identifier: identifiers[index]!,
      email: row.email,
      passwordHash: row.passwordHash,
      role: row.role,
      scopes: row.scopes,
    })),
  );
}

/** Moves an organisation to another plan. */
export function changePlanSql(organisation: string, plan: string): string {
  return `UPDATE organisations SET plan = ${literal(plan)} WHERE identifier = ${literal(organisation)};`;
}

/** Suspends or re-activates one member of one organisation. */
export function setMemberStatusSql(organisation: string, email: string, status: "active" | "suspended"): string {
  return (
    `UPDATE members SET status = ${literal(status)} WHERE email = ${literal(email)} ` +
    `AND organisation_id = (SELECT id FROM organisations WHERE identifier = ${literal(organisation)});`
  );
}

/** Deletes one member of one organisation (their dynamic secrets keep existing, `created_by` becomes NULL). */
export function deleteMemberSql(organisation: string, email: string): string {
  return (
    `DELETE FROM members WHERE email = ${literal(email)} ` +
    `AND organisation_id = (SELECT id FROM organisations WHERE identifier = ${literal(organisation)});`
  );
}

/** D1's clock in ms (every SQLite has julianday; unixepoch('subsec') needs 3.42). */
const NOW_MS = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)";

/**
 * Sets one member's password hash and `password_changed_at` to now, and revokes the member's sessions at this
 * instant (`sessions_revoked_at`, ms): every refresh session started at or before it ends (the refresh reads it).
 */
export function setPasswordSql(organisation: string, email: string, passwordHash: string): string {
  return (
    `UPDATE members SET password_hash = ${literal(passwordHash)}, password_changed_at = unixepoch(), ` +
    `sessions_revoked_at = max(coalesce(sessions_revoked_at, 0) + 1, ${NOW_MS}) ` +
    `WHERE email = ${literal(email)} ` +
    `AND organisation_id = (SELECT id FROM organisations WHERE identifier = ${literal(organisation)});`
  );
}
