/** Exchanging a refresh token for a new token pair: every check, rotation, reuse detection. */
import type { ConfigSource } from "../config";
import type { Refusal } from "../gateway-error";
import type { Logger } from "../log";
import { ineligibility } from "../policy/eligibility";
import { issueInstant, revokedBy } from "../revocation/order";
import { memberScope } from "../policy/scopes";
import type { Membership } from "../storage/db";
import type { MemberReads } from "../revocation/reads";
import { findMembershipById } from "../storage/members";
import { issueAccessToken, type IssuedAccessToken } from "./access";
import type { KeyStore } from "./keys";
import type { RefreshRecord, RefreshStore, RefreshTokenGrant } from "./refresh-store";
import { isRefreshToken } from "./refresh-token";

/** Why a refresh was refused; recorded in the audit trail, never sent to the client. */
type RefreshFailureReason =
  | "malformed"
  | "unknown"
  | "expired"
  | "family_revoked"
  | "member_signed_out"
  | "reused"
  | "forked"
  | "member_deleted"
  | "organisation_revoked"
  | "suspended"
  | "plan_not_eligible";

/** Whose session a refresh concerned, when the token was known. */
interface RefreshSubject {
  memberId?: number;
  organisationId?: number;
  familyId?: string;
}

/** A successful exchange. `graced`: the already-issued successor was returned within the grace window. */
interface RefreshSuccess extends RefreshSubject {
  ok: true;
  access: IssuedAccessToken;
  refresh: RefreshTokenGrant;
  graced: boolean;
}

/** A refused exchange: why (for the audit trail) and the refusal the client gets. */
interface RefreshFailure extends RefreshSubject {
  ok: false;
  reason: RefreshFailureReason;
  refusal: Refusal;
}

/** The result of {@link RefreshSessions.refresh}. */
export type RefreshOutcome = RefreshSuccess | RefreshFailure;

function refused(reason: RefreshFailureReason, subject: RefreshSubject = {}): RefreshFailure {
  const refusal: Refusal =
    reason === "malformed"
      ? "malformedGrant"
      : reason === "suspended"
        ? "suspended"
        : reason === "plan_not_eligible"
          ? "planNotEligible"
          : "invalidGrant";
  return { ok: false, reason, refusal, ...subject };
}

/** What {@link RefreshSessions} works with; all owned by the gateway. */
export interface RefreshSessionDeps {
  source: ConfigSource;
  store: RefreshStore;
  keys: KeyStore;
  /** Membership reads from replicas, fresh enough for every revocation and change in force. */
  members: MemberReads;
  now: () => number;
}

/** Why the member or organisation may no longer continue this session, if so. */
function sessionEnd(
  source: ConfigSource,
  membership: Membership | undefined,
  record: RefreshRecord,
  subject: RefreshSubject,
): RefreshFailure | undefined {
  if (!membership || membership.member.organisationId !== record.organisationId)
    return refused("member_deleted", subject);
  const { member, organisation } = membership;
  if (revokedBy(record.familyCreatedAt, member.sessionsRevokedAt)) return refused("member_signed_out", subject);
  if (revokedBy(record.familyCreatedAt, organisation.sessionsRevokedAt))
    return refused("organisation_revoked", subject);
  const ineligible = ineligibility(source.config, member, organisation);
  if (ineligible) return refused(ineligible === "suspended" ? "suspended" : "plan_not_eligible", subject);
  return undefined;
}

/**
 * Refresh-token exchanges of one isolate. Concurrent duplicates are not joined here (CONTRIBUTING.md § add a cache):
 * the family's object rotates once and hands the same successor to the others within the grace window.
 */
export class RefreshSessions {
  constructor(private readonly deps: RefreshSessionDeps) {}

  /** Exchanges `token` for a new access token and its rotated successor, or says why not; the family's object decides. */
  refresh(log: Logger, token: string): Promise<RefreshOutcome> {
    if (!isRefreshToken(token)) return Promise.resolve(refused("malformed"));
    return this.exchange(log, token);
  }

  private async exchange(log: Logger, token: string): Promise<RefreshOutcome> {
    const { source, store, keys, members } = this.deps;
    const config = source.config;
    const now = this.deps.now();
    const graceMs = config.refreshGraceSeconds * 1000;
    const session = await store.load(log, token);
    if (!session) return refused("unknown");
    const { record } = session;
    const subject = { memberId: record.memberId, organisationId: record.organisationId, familyId: record.familyId };
    if (record.expiresAt <= now) return refused("expired", subject);
    if (session.revoked) return refused(session.revoked, subject);

    // D1 is read beside the successor's KV write; the family's object then applies a session end only
    // after its own reuse check, in one decision.
    const prepared = store.prepareSuccessor(token, session, now);
    prepared.catch(() => undefined); // a failed D1 read must not leave it unhandled
    const membership = await members.read(
      log,
      (db) => findMembershipById(db, record.memberId),
      (found) => ({ members: [record.memberId], organisations: found ? [found.organisation.identifier] : [] }),
    );
    const ended = sessionEnd(source, membership, record, subject);
    const result = await store.exchange(log, {
      presented: token,
      session,
      prepared: ended ? undefined : await prepared,
      graceMs,
      end: ended?.reason,
      now,
    });
    if (result.outcome === "unknown" || result.outcome === "reused") return refused(result.outcome, subject);
    if (result.outcome === "revoked") return refused("family_revoked", subject);
    if (result.outcome === "ended") return ended ?? refused("member_deleted", subject);
    if (!membership) return refused("member_deleted", subject);
    const { member, organisation } = membership;
    const { refresh } = result;
    const access = await issueAccessToken(
      config,
      await keys.fixedRing(),
      {
        memberEntityId: member.id,
        memberEntityIdentifier: member.identifier,
        organisationEntityIdentifier: organisation.identifier,
        scope: memberScope(member.role, member.extraScopes),
      },
      issueInstant(now, member.sessionsRevokedAt, organisation.sessionsRevokedAt),
    );
    return { ok: true, access, refresh, graced: result.outcome === "graced", ...subject };
  }
}
