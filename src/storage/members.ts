/** D1 look-ups and updates of a member by id, as session refresh and revoke-all need them. */
import { eq, sql } from "drizzle-orm";
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

/**
 * Records a member's revoke-all at `at` (ms; never moves back): every refresh session the member started
 * until then ends at its next refresh, at every location, since each refresh reads this row.
 */
export async function revokeMemberSessionsAt(db: Database, memberId: number, at: number): Promise<void> {
  await db
    .update(members)
    .set({ sessionsRevokedAt: sql`max(coalesce(${members.sessionsRevokedAt}, 0), ${at})` })
    .where(eq(members.id, memberId));
}
