/** The gateway's D1 queries, typed through drizzle, and its ways to D1: the primary, and read replicas through sessions. */
import { and, eq } from "drizzle-orm";
import { drizzle, type DrizzleD1Database } from "drizzle-orm/d1";
import { unavailable } from "../gateway-error";
import { boundedD1, type StorageCalls } from "./bounded";
import { members, organisations, ssoConnections, type Member, type Organisation } from "./schema";
import { checkedRows, isLoginMembership } from "./rows";

/** A drizzle handle over the `DB` binding. */
export type Database = DrizzleD1Database;

/** A drizzle handle over a D1 binding or session. */
export function database(d1: D1Database): Database {
  return drizzle(d1);
}

/** A D1 session: its drizzle handle, and the bookmark of the latest database state it read or wrote. */
export interface D1Session {
  db: Database;
  bookmark(): string | null;
}

/**
 * The gateway's ways to D1, each call bounded ({@link StorageCalls}): `primary` for writes and reads that must see the
 * latest write, {@link session} for the D1 Sessions API's read replicas (docs/capacity.md § 3).
 */
export class D1Access {
  readonly primary: Database;

  constructor(
    private readonly d1: D1Database,
    private readonly calls: StorageCalls,
  ) {
    this.primary = database(boundedD1(d1, calls));
  }

  /** A new session (one per logical task: its queries are sequentially consistent with each other). */
  session(constraintOrBookmark: D1SessionConstraint | D1SessionBookmark): D1Session {
    let session: D1DatabaseSession;
    try {
      session = this.d1.withSession(constraintOrBookmark);
    } catch (error) {
      throw unavailable("d1", String(error));
    }
    return {
      db: database(boundedD1(session as unknown as D1Database, this.calls)),
      bookmark: () => session.getBookmark(),
    };
  }
}

/** A membership: the member row and the organisation it belongs to. */
export interface Membership {
  member: Member;
  organisation: Organisation;
}

/** A membership read for a password login: also whether its organisation requires single sign-on (`null`: no connection). */
export interface LoginMembership extends Membership {
  ssoRequired: boolean | null;
}

/** Every membership with this (normalised) email, narrowed to one organisation domain when given. */
export async function findMemberships(db: Database, email: string, domain?: string): Promise<LoginMembership[]> {
  const where =
    domain === undefined ? eq(members.email, email) : and(eq(members.email, email), eq(organisations.domain, domain));
  const rows = await db
    .select({ member: members, organisation: organisations, ssoRequired: ssoConnections.required })
    .from(members)
    .innerJoin(organisations, eq(members.organisationId, organisations.id))
    .leftJoin(ssoConnections, eq(ssoConnections.organisationId, organisations.id))
    .where(where)
    .limit(16);
  return checkedRows(rows, isLoginMembership, "membership");
}
