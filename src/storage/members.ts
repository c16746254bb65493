/** D1 look-ups of a member by id, as session refresh needs them. */
import { eq } from "drizzle-orm";
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
