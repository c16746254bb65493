/** D1 queries of single sign-on: connections and their domains, the sign-ins in progress, members' IdP subjects. */
import { and, count, eq, inArray, isNotNull, isNull, lt, ne, notExists, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/sqlite-core";
import type { Database, Membership } from "./db";
import { checkedRows, isMembership } from "./rows";
import { members, organisations, ssoConnections, ssoDomains, ssoStates } from "./schema";

/** An organisation's connection as the routes need it. */
export interface SsoConnection {
  organisationId: number;
  organisationIdentifier: string;
  issuer: string;
  clientId: string;
  /** Sealed under `SECRETS_KEY` (`src/dynamic-secrets/crypto.ts`). */
  clientSecret: string;
  required: boolean;
  domains: string[];
  /** Seconds. */
  createdAt: number;
  updatedAt: number;
}

/** A sign-in in progress, as `GET /authenticate/sso/start` stored it. */
export type SsoState = typeof ssoStates.$inferSelect;

const isText = (value: unknown) => typeof value === "string";
const isId = (value: unknown) => Number.isSafeInteger(value);

function isConnectionRow(row: unknown): boolean {
  const r = row as Record<string, unknown> | null;
  return (
    r !== null &&
    typeof r === "object" &&
    isId(r.organisationId) &&
    isText(r.organisationIdentifier) &&
    isText(r.issuer) &&
    isText(r.clientId) &&
    isText(r.clientSecret) &&
    typeof r.required === "boolean" &&
    isId(r.createdAt) &&
    isId(r.updatedAt) &&
    (r.domain === null || isText(r.domain))
  );
}

function isStateRow(row: unknown): boolean {
  const r = row as Record<string, unknown> | null;
  return (
    r !== null &&
    typeof r === "object" &&
    isId(r.organisationId) &&
    isId(r.expiresAt) &&
    ["stateHash", "browserHash", "nonce", "codeVerifier", "redirectUri", "returnTo"].every((field) => isText(r[field]))
  );
}

const routed = alias(ssoDomains, "routed");

async function connectionWhere(db: Database, where: ReturnType<typeof eq>): Promise<SsoConnection | undefined> {
  const rows = await db
    .select({
      organisationId: ssoConnections.organisationId,
      organisationIdentifier: organisations.identifier,
      issuer: ssoConnections.issuer,
      clientId: ssoConnections.clientId,
      clientSecret: ssoConnections.clientSecret,
      required: ssoConnections.required,
      createdAt: ssoConnections.createdAt,
      updatedAt: ssoConnections.updatedAt,
      domain: ssoDomains.domain,
    })
    .from(ssoConnections)
    .innerJoin(organisations, eq(organisations.id, ssoConnections.organisationId))
    .leftJoin(ssoDomains, eq(ssoDomains.organisationId, ssoConnections.organisationId))
    .where(where)
    .limit(64);
  const checked = checkedRows(rows, isConnectionRow, "sso connection");
  const [first] = checked;
  if (!first) return undefined;
  const { domain: _domain, ...connection } = first;
  return { ...connection, domains: checked.flatMap((row) => (row.domain === null ? [] : [row.domain])) };
}

/** The connection an email domain routes to. */
export function connectionForEmailDomain(db: Database, domain: string): Promise<SsoConnection | undefined> {
  return connectionWhere(
    db,
    eq(
      ssoConnections.organisationId,
      db.select({ id: routed.organisationId }).from(routed).where(eq(routed.domain, domain)),
    ),
  );
}

/** The connection of the organisation whose domain (`organisations.domain`) this is. */
export function connectionForOrganisationDomain(db: Database, domain: string): Promise<SsoConnection | undefined> {
  return connectionWhere(db, eq(organisations.domain, domain));
}

/** The connection of an organisation by id. */
export function connectionOf(db: Database, organisationId: number): Promise<SsoConnection | undefined> {
  return connectionWhere(db, eq(ssoConnections.organisationId, organisationId));
}

/** A connection as an operator sees it: with how many members' identities at its provider are remembered. */
export interface SsoConnectionRecord extends SsoConnection {
  pinned: number;
}

/** A connection to write: its secret already sealed. */
export type SsoConnectionChange = Pick<SsoConnection, "issuer" | "clientId" | "clientSecret" | "required" | "domains">;

/** The connection of an organisation by id, with its pinned members. */
export async function connectionRecord(db: Database, organisationId: number): Promise<SsoConnectionRecord | undefined> {
  const connection = await connectionOf(db, organisationId);
  if (!connection) return undefined;
  const [pinned] = await db
    .select({ count: count() })
    .from(members)
    .where(and(eq(members.organisationId, organisationId), isNotNull(members.ssoSubject)));
  return { ...connection, pinned: pinned?.count ?? 0 };
}

/** Those of `domains` routed to another organisation's connection, with that organisation's identifier. */
export async function domainsRoutedElsewhere(
  db: Database,
  organisationId: number,
  domains: readonly string[],
): Promise<{ domain: string; organisation: string }[]> {
  const [routed, owned] = await Promise.all([
    db
      .select({ domain: ssoDomains.domain, organisation: organisations.identifier })
      .from(ssoDomains)
      .innerJoin(organisations, eq(organisations.id, ssoDomains.organisationId))
      .where(and(inArray(ssoDomains.domain, [...domains]), ne(ssoDomains.organisationId, organisationId))),
    db
      .select({ domain: organisations.domain, organisation: organisations.identifier })
      .from(organisations)
      .where(and(inArray(organisations.domain, [...domains]), ne(organisations.id, organisationId))),
  ]);
  return [...routed, ...owned.filter((row) => !routed.some((taken) => taken.domain === row.domain))];
}

/**
 * Creates or replaces an organisation's connection and domains, forgetting members' identities at any other issuer,
 * in one batch; resolves to the connection's times and how many identities it forgot.
 */
export async function writeConnection(
  db: Database,
  organisationId: number,
  change: SsoConnectionChange,
): Promise<{ createdAt: number; updatedAt: number; forgotten: number }> {
  const { issuer, clientId, clientSecret, required } = change;
  const [written, forgotten] = await db.batch([
    db
      .insert(ssoConnections)
      .values({ organisationId, issuer, clientId, clientSecret, required })
      .onConflictDoUpdate({
        target: ssoConnections.organisationId,
        set: { issuer, clientId, clientSecret, required, updatedAt: sql`(unixepoch())` },
      })
      .returning({ createdAt: ssoConnections.createdAt, updatedAt: ssoConnections.updatedAt }),
    db
      .update(members)
      .set({ ssoIssuer: null, ssoSubject: null })
      .where(
        and(eq(members.organisationId, organisationId), isNotNull(members.ssoIssuer), ne(members.ssoIssuer, issuer)),
      ),
    db.delete(ssoDomains).where(eq(ssoDomains.organisationId, organisationId)),
    db.insert(ssoDomains).values(change.domains.map((domain) => ({ domain, organisationId }))),
  ]);
  const [times] = written;
  return { createdAt: times?.createdAt ?? 0, updatedAt: times?.updatedAt ?? 0, forgotten: forgotten.meta.changes };
}

/** Deletes an organisation's connection and its domains and forgets the members' identities, in one batch; resolves to how many it forgot. */
export async function deleteConnection(db: Database, organisationId: number): Promise<number> {
  const [forgotten] = await db.batch([
    db
      .update(members)
      .set({ ssoIssuer: null, ssoSubject: null })
      .where(and(eq(members.organisationId, organisationId), isNotNull(members.ssoSubject))),
    db.delete(ssoDomains).where(eq(ssoDomains.organisationId, organisationId)),
    db.delete(ssoConnections).where(eq(ssoConnections.organisationId, organisationId)),
  ]);
  return forgotten.meta.changes;
}

/** Whether the email domain routes to, or the organisation domain names, a connection that requires SSO. */
export async function passwordsRefusedFor(
  db: Database,
  emailDomain: string,
  organisationDomain: string | undefined,
): Promise<boolean> {
  const byEmail = db
    .select({ one: sql`1` })
    .from(ssoDomains)
    .innerJoin(ssoConnections, eq(ssoConnections.organisationId, ssoDomains.organisationId))
    .where(and(eq(ssoDomains.domain, emailDomain), eq(ssoConnections.required, true)));
  const rows =
    organisationDomain === undefined
      ? await byEmail.limit(1)
      : await byEmail
          .union(
            db
              .select({ one: sql`1` })
              .from(organisations)
              .innerJoin(ssoConnections, eq(ssoConnections.organisationId, organisations.id))
              .where(and(eq(organisations.domain, organisationDomain), eq(ssoConnections.required, true))),
          )
          .limit(1);
  return rows.length > 0;
}

/** Stores a sign-in in progress and, in the same batch, deletes the expired ones (indexed on `expires_at`). */
export async function insertState(db: Database, state: SsoState, now: number): Promise<void> {
  await db.batch([db.insert(ssoStates).values(state), db.delete(ssoStates).where(lt(ssoStates.expiresAt, now))]);
}

/** Deletes and returns a sign-in in progress, so one callback gets it; an expired one too (the caller refuses it). */
export async function takeState(db: Database, stateHash: string): Promise<SsoState | undefined> {
  const rows = await db.delete(ssoStates).where(eq(ssoStates.stateHash, stateHash)).returning();
  return checkedRows(rows, isStateRow, "sso state")[0];
}

/** The member of this organisation with this (normalised) email, with its organisation. */
export async function findSsoMembership(
  db: Database,
  organisationId: number,
  email: string,
): Promise<Membership | undefined> {
  const rows = await db
    .select({ member: members, organisation: organisations })
    .from(members)
    .innerJoin(organisations, eq(members.organisationId, organisations.id))
    .where(and(eq(members.organisationId, organisationId), eq(members.email, email)))
    .limit(1);
  return checkedRows(rows, isMembership, "membership")[0];
}

const holder = alias(members, "holder");

/** Remembers a member's IdP identity unless one is set or another member holds it; false when nothing was written. */
export async function pinSsoIdentity(
  db: Database,
  member: { id: number; organisationId: number },
  identity: { issuer: string; subject: string },
): Promise<boolean> {
  const result = await db
    .update(members)
    .set({ ssoIssuer: identity.issuer, ssoSubject: identity.subject })
    .where(
      and(
        eq(members.id, member.id),
        isNull(members.ssoSubject),
        notExists(
          db
            .select({ one: sql`1` })
            .from(holder)
            .where(
              and(
                eq(holder.organisationId, member.organisationId),
                eq(holder.ssoIssuer, identity.issuer),
                eq(holder.ssoSubject, identity.subject),
              ),
            ),
        ),
      ),
    );
  return result.meta.changes === 1;
}
