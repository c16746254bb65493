/** D1 queries behind dynamic secrets: memberships and the secret rows of one organisation. */
import { and, asc, eq, isNull, sql } from "drizzle-orm";
import type { Database } from "./db";
import { checkedRows, isMembershipState, isSealedSecret } from "./rows";
import { dynamicSecrets, members, organisations } from "./schema";

/** A member and its organisation as the secrets features need them. */
export interface MembershipState {
  organisationId: number;
  organisationStatus: string;
  memberId: number;
  memberStatus: string;
}

/** A live secret as stored: its kid and the sealed value, never plaintext. */
export interface SealedSecret {
  kid: string;
  ciphertext: string;
}

/** What listing shows of a secret: no value, sealed or not. */
export interface SecretSummary {
  kid: string;
  label: string;
  createdAt: number;
  createdBy: number | null;
}

/** The member `memberIdentifier` of organisation `organisationIdentifier`, or undefined. */
export async function findMembershipState(
  db: Database,
  organisationIdentifier: string,
  memberIdentifier: string,
): Promise<MembershipState | undefined> {
  const rows = await db
    .select({
      organisationId: organisations.id,
      organisationStatus: organisations.status,
      memberId: members.id,
      memberStatus: members.status,
    })
    .from(members)
    .innerJoin(organisations, eq(members.organisationId, organisations.id))
    .where(and(eq(organisations.identifier, organisationIdentifier), eq(members.identifier, memberIdentifier)))
    .limit(1);
  return checkedRows(rows, isMembershipState, "membership state")[0];
}

/** Inserts a secret unless the organisation already has `limit` live ones; true when inserted. */
export async function insertSecretWithinLimit(
  db: Database,
  row: {
    kid: string;
    organisationId: number;
    ciphertext: string;
    label: string;
    createdBy: number | null;
    createdAt: number;
  },
  limit: number,
): Promise<boolean> {
  const result = await db.run(sql`
    INSERT INTO dynamic_secrets (kid, organisation_id, ciphertext, label, created_by, created_at)
    SELECT ${row.kid}, ${row.organisationId}, ${row.ciphertext}, ${row.label}, ${row.createdBy}, ${row.createdAt}
    WHERE (SELECT COUNT(*) FROM dynamic_secrets WHERE organisation_id = ${row.organisationId} AND revoked_at IS NULL) < ${limit}`);
  return result.meta.changes === 1;
}

/** The live secrets of an organisation (by id), oldest first, without values. */
export function listLiveSecrets(db: Database, organisationId: number): Promise<SecretSummary[]> {
  return db
    .select({
      kid: dynamicSecrets.kid,
      label: dynamicSecrets.label,
      createdAt: dynamicSecrets.createdAt,
      createdBy: dynamicSecrets.createdBy,
    })
    .from(dynamicSecrets)
    .where(and(eq(dynamicSecrets.organisationId, organisationId), isNull(dynamicSecrets.revokedAt)))
    .orderBy(asc(dynamicSecrets.createdAt), asc(dynamicSecrets.kid));
}

/** Marks a live secret of this organisation revoked; false when no such live secret exists there. */
export async function revokeLiveSecret(db: Database, organisationId: number, kid: string): Promise<boolean> {
  const result = await db
    .update(dynamicSecrets)
    .set({ revokedAt: sql`(unixepoch())` })
    .where(
      and(
        eq(dynamicSecrets.kid, kid),
        eq(dynamicSecrets.organisationId, organisationId),
        isNull(dynamicSecrets.revokedAt),
      ),
    );
  return result.meta.changes === 1;
}

/** The live sealed secrets of an organisation by its public identifier. */
export async function liveSealedSecrets(db: Database, organisationIdentifier: string): Promise<SealedSecret[]> {
  const rows = await db
    .select({ kid: dynamicSecrets.kid, ciphertext: dynamicSecrets.ciphertext })
    .from(dynamicSecrets)
    .innerJoin(organisations, eq(dynamicSecrets.organisationId, organisations.id))
    .where(and(eq(organisations.identifier, organisationIdentifier), isNull(dynamicSecrets.revokedAt)));
  return checkedRows(rows, isSealedSecret, "secret");
}
