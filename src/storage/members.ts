/** D1 look-ups of a member by id and the revocation instants of members and organisations, as refresh and revocations need them. */
import { eq, inArray, sql } from "drizzle-orm";
import type { Database, Membership } from "./db";
import { checkedRows, isMembership } from "./rows";
import { members, organisations } from "./schema";

/** The member with this id and its organisation, or undefined when the member no longer exists. */
export async function findMembershipById(db: Database, memberId: number): Promise<Membership | undefined> {
  const rows = await db
    .select({ member: members, organisation: organisations })
    .from(members)
    .innerJoin(organisations, eq(members.organisationId, organisations.id))
    .where(eq(members.id, memberId))
    .limit(1);
  return checkedRows(rows, isMembership, "membership")[0];
}

/** Records a member's revocation at `at` (ms; never moves back): sessions started until then end at their next refresh. */
export async function revokeMemberSessionsAt(db: Database, memberId: number, at: number): Promise<void> {
  await db
    .update(members)
    .set({ sessionsRevokedAt: sql`max(coalesce(${members.sessionsRevokedAt}, 0), ${at})` })
    .where(eq(members.id, memberId));
}

/** Records an organisation's revocation at `at` (ms; never moves back), as {@link revokeMemberSessionsAt} does for a member. */
export async function revokeOrganisationSessionsAt(db: Database, identifier: string, at: number): Promise<void> {
  await db
    .update(organisations)
    .set({ sessionsRevokedAt: sql`max(coalesce(${organisations.sessionsRevokedAt}, 0), ${at})` })
    .where(eq(organisations.identifier, identifier));
}

/** The latest revocation instants (ms) recorded for these members and organisations, those that have one. */
export async function latestRevocations(
  db: Database,
  memberIds: readonly number[],
  organisationIdentifiers: readonly string[],
): Promise<number[]> {
  const [memberRows, organisationRows] = await Promise.all([
    memberIds.length === 0
      ? []
      : db
          .select({ at: members.sessionsRevokedAt })
          .from(members)
          .where(inArray(members.id, [...memberIds])),
    organisationIdentifiers.length === 0
      ? []
      : db
          .select({ at: organisations.sessionsRevokedAt })
          .from(organisations)
          .where(inArray(organisations.identifier, [...organisationIdentifiers])),
  ]);
  return [...memberRows, ...organisationRows].flatMap(({ at }) => (Number.isSafeInteger(at) ? [at as number] : []));
}
