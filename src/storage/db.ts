/** The gateway's D1 queries, typed through drizzle. */
import { and, eq } from "drizzle-orm";
import { drizzle, type DrizzleD1Database } from "drizzle-orm/d1";
import { members, organisations, type Member, type Organisation } from "./schema";
import * as schema from "./schema";
import { checkedRows, isMembership } from "./rows";

/** A drizzle handle over the `DB` binding. */
export type Database = DrizzleD1Database<typeof schema>;

/** A drizzle handle over a D1 binding; the gateway makes one per isolate. */
export function database(d1: D1Database): Database {
  return drizzle(d1, { schema });
}

/** A membership: the member row and the organisation it belongs to. */
export interface Membership {
  member: Member;
  organisation: Organisation;
}

/** Every membership with this (normalised) email, narrowed to one organisation domain when given. */
export async function findMemberships(db: Database, email: string, domain?: string): Promise<Membership[]> {
  const where =
    domain === undefined ? eq(members.email, email) : and(eq(members.email, email), eq(organisations.domain, domain));
  const rows = await db
    .select({ member: members, organisation: organisations })
    .from(members)
    .innerJoin(organisations, eq(members.organisationId, organisations.id))
    .where(where)
    .limit(16);
  return checkedRows(rows, isMembership, "membership");
}
