/** D1 queries behind the admin routes: organisations and members as operators create, list and change them. */
import { and, asc, eq, gt, inArray, or, sql } from "drizzle-orm";
import type { Database } from "./db";
import { members, organisations, type MemberRole } from "./schema";

/** An organisation as an operator sees it. */
export interface OrganisationRow {
  id: number;
  identifier: string;
  name: string;
  domain: string;
  plan: string;
  status: string;
  createdAt: number;
}

/** A member as an operator sees it: never the password hash. */
export interface MemberRow {
  id: number;
  identifier: string;
  email: string;
  role: string | null;
  scopes: string;
  status: string;
  createdAt: number;
}

/** A member to insert. */
export interface NewMember {
  identifier: string;
  email: string;
  passwordHash: string;
  role: MemberRole;
  scopes: string;
}

const organisationColumns = {
  id: organisations.id,
  identifier: organisations.identifier,
  name: organisations.name,
  domain: organisations.domain,
  plan: organisations.plan,
  status: organisations.status,
  createdAt: organisations.createdAt,
};

const memberColumns = {
  id: members.id,
  identifier: members.identifier,
  email: members.email,
  role: members.role,
  scopes: members.extraScopes,
  status: members.status,
  createdAt: members.createdAt,
};

/** The organisation with this identifier. */
export async function findOrganisation(db: Database, identifier: string): Promise<OrganisationRow | undefined> {
  const [row] = await db
    .select(organisationColumns)
    .from(organisations)
    .where(eq(organisations.identifier, identifier));
  return row;
}

/** Organisations already holding `identifier` or `domain`. */
export function organisationsHolding(db: Database, identifier: string, domain: string): Promise<OrganisationRow[]> {
  return db
    .select(organisationColumns)
    .from(organisations)
    .where(or(eq(organisations.identifier, identifier), eq(organisations.domain, domain)));
}

/** Inserts an active organisation and returns it. */
export async function insertOrganisation(
  db: Database,
  input: { identifier: string; name: string; domain: string; plan: string },
): Promise<OrganisationRow> {
  const [row] = await db.insert(organisations).values(input).returning(organisationColumns);
  return row!;
}

/** Up to `limit` organisations with an id above `after`, by id, each with its number of members. */
export function listOrganisations(
  db: Database,
  after: number,
  limit: number,
): Promise<(OrganisationRow & { members: number })[]> {
  return db
    .select({
      ...organisationColumns,
      members: sql<number>`(SELECT count(*) FROM members WHERE members.organisation_id = organisations.id)`,
    })
    .from(organisations)
    .where(gt(organisations.id, after))
    .orderBy(asc(organisations.id))
    .limit(limit);
}

/** Sets an organisation's plan or status. */
export async function updateOrganisation(
  db: Database,
  id: number,
  change: { plan: string } | { status: "active" | "suspended" },
): Promise<void> {
  await db.update(organisations).set(change).where(eq(organisations.id, id));
}

/** The member of organisation `organisationId` with this (normalised) email. */
export async function findMember(db: Database, organisationId: number, email: string): Promise<MemberRow | undefined> {
  const [row] = await db
    .select(memberColumns)
    .from(members)
    .where(and(eq(members.organisationId, organisationId), eq(members.email, email)));
  return row;
}

/** The member with this identifier, in any organisation. */
export async function findMemberByIdentifier(db: Database, identifier: string): Promise<MemberRow | undefined> {
  const [row] = await db.select(memberColumns).from(members).where(eq(members.identifier, identifier));
  return row;
}

/** Emails of `emails` already members of the organisation, and identifiers of `identifiers` already taken anywhere. */
export async function memberConflicts(
  db: Database,
  organisationId: number,
  emails: readonly string[],
  identifiers: readonly string[],
): Promise<{ emails: string[]; identifiers: string[] }> {
  const [byEmail, byIdentifier] = await Promise.all([
    emails.length === 0
      ? []
      : db
          .select({ email: members.email })
          .from(members)
          .where(and(eq(members.organisationId, organisationId), inArray(members.email, [...emails]))),
    identifiers.length === 0
      ? []
      : db
          .select({ identifier: members.identifier })
          .from(members)
          .where(inArray(members.identifier, [...identifiers])),
  ]);
  return { emails: byEmail.map((row) => row.email), identifiers: byIdentifier.map((row) => row.identifier) };
}

/** Inserts `rows` into the organisation in one D1 batch (one transaction: all or none); returns their ids by identifier. */
export async function insertMembers(
  db: Database,
  organisationId: number,
  rows: readonly NewMember[],
): Promise<Map<string, number>> {
  const inserts = rows.map((row) =>
    db
      .insert(members)
      .values({
        identifier: row.identifier,
        organisationId,
        email: row.email,
        passwordHash: row.passwordHash,
        role: row.role,
        extraScopes: row.scopes,
      })
      .returning({ id: members.id, identifier: members.identifier }),
  );
  const results = await db.batch(inserts as [(typeof inserts)[number], ...typeof inserts]);
  return new Map(results.flat().map((row) => [row.identifier, row.id]));
}

/** Up to `limit` members of the organisation with an id above `after`, by id. */
export function listMembers(db: Database, organisationId: number, after: number, limit: number): Promise<MemberRow[]> {
  return db
    .select(memberColumns)
    .from(members)
    .where(and(eq(members.organisationId, organisationId), gt(members.id, after)))
    .orderBy(asc(members.id))
    .limit(limit);
}

/** Suspends or re-activates one member. */
export async function setMemberStatus(db: Database, memberId: number, status: "active" | "suspended"): Promise<void> {
  await db.update(members).set({ status }).where(eq(members.id, memberId));
}

/** Sets one member's password hash and, in the same statement, ends the member's sessions at `at` (ms; never moving back). */
export async function setMemberPassword(
  db: Database,
  memberId: number,
  passwordHash: string,
  at: number,
): Promise<void> {
  await db
    .update(members)
    .set({
      passwordHash,
      passwordChangedAt: sql`unixepoch()`,
      sessionsRevokedAt: sql`max(coalesce(${members.sessionsRevokedAt}, 0) + 1, ${at})`,
    })
    .where(eq(members.id, memberId));
}

/** Deletes one member (the dynamic secrets it created stay, `created_by` NULL). */
export async function deleteMember(db: Database, memberId: number): Promise<void> {
  await db.delete(members).where(eq(members.id, memberId));
}
