/** D1 queries behind dynamic secrets: memberships and the secret rows of one organisation. */
import { and, asc, eq, isNull, sql } from "drizzle-orm";
import type { Database } from "./db";
import { unavailable } from "../gateway-error";
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

/** A member as a dynamic token needs it: its id, and whether it and its organisation are active. */
type DynamicMember = [memberId: number, active: boolean];

/** An organisation's live sealed secrets and, when it has at most `memberLimit` members, each by identifier (else null). */
export interface DynamicOrganisation {
  secrets: SealedSecret[];
  members: Record<string, DynamicMember> | null;
}

/** {@link DynamicOrganisation} of the organisation with this public identifier (no secrets, no members: none). */
export async function dynamicOrganisation(
  db: Database,
  organisationIdentifier: string,
  memberLimit: number,
): Promise<DynamicOrganisation> {
  const [row] = await db.all<{ secrets: string; members: string | null }>(sql`
    select
      (select json_group_array(json_object('kid', "dynamic_secrets"."kid", 'ciphertext', "dynamic_secrets"."ciphertext"))
        from "dynamic_secrets" join "organisations" on "dynamic_secrets"."organisation_id" = "organisations"."id"
        where "organisations"."identifier" = ${organisationIdentifier} and "dynamic_secrets"."revoked_at" is null) as "secrets",
      (select case when count(*) > ${memberLimit} then null else json_group_object("members"."identifier",
          json_array("members"."id", "members"."status" = 'active' and "organisations"."status" = 'active')) end
        from "members" join "organisations" on "members"."organisation_id" = "organisations"."id"
        where "organisations"."identifier" = ${organisationIdentifier}) as "members"`);
  const secrets: unknown = JSON.parse(row?.secrets ?? "null");
  const members: unknown = row?.members == null ? null : JSON.parse(row.members);
  const isMember = (value: unknown) =>
    Array.isArray(value) && Number.isSafeInteger(value[0]) && (value[1] === 0 || value[1] === 1);
  const membersValid = members === null || (typeof members === "object" && Object.values(members).every(isMember));
  if (!Array.isArray(secrets) || !membersValid) throw unavailable("d1", "malformed dynamic organisation row");
  return {
    secrets: checkedRows(secrets as SealedSecret[], isSealedSecret, "secret"),
    members:
      members === null
        ? null
        : Object.fromEntries(
            Object.entries(members as Record<string, [number, number]>).map(([identifier, [id, active]]) => [
              identifier,
              [id, active === 1] as DynamicMember,
            ]),
          ),
  };
}
