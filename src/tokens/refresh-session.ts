/** Exchanging a refresh token for a new token pair: every check, rotation, reuse detection, in-isolate de-duplication. */
import type { Bindings, Config } from "../config";
import { GatewayError } from "../errors";
import { isEligible } from "../policy/plan";
import { memberScope } from "../policy/scopes";
import { database, type Membership } from "../storage/db";
import { findMembershipById } from "../storage/members";
import { issueAccessToken, type IssuedAccessToken } from "./access";
import {
  graceSuccessor,
  isForked,
  loadRefreshToken,
  revokeFamily,
  rotateRefreshToken,
  type RefreshRecord,
  type RefreshTokenGrant,
} from "./refresh";
import { isRefreshToken } from "./refresh-token";

/** Why a refresh was refused; recorded in the audit trail, never sent to the client. */
export type RefreshFailureReason =
  | "malformed"
  | "unknown"
  | "expired"
  | "family_revoked"
  | "member_signed_out"
  | "reused"
  | "forked"
  | "member_deleted"
  | "password_changed"
  | "suspended"
  | "plan_not_eligible";

/** Whose session a refresh concerned, when the token was known. */
export interface RefreshSubject {
  memberId?: number;
  organisationId?: number;
  familyId?: string;
}

/** A successful exchange. `graced`: the already-issued successor was returned within the grace window. */
export interface RefreshSuccess extends RefreshSubject {
  ok: true;
  access: IssuedAccessToken;
  refresh: RefreshTokenGrant;
  graced: boolean;
}

/** A refused exchange; `error` is what the client gets. */
export interface RefreshFailure extends RefreshSubject {
  ok: false;
  error: GatewayError;
  reason: RefreshFailureReason;
}

/** The result of {@link refreshSession}. */
export type RefreshOutcome = RefreshSuccess | RefreshFailure;

const INVALID_GRANT = "The refresh token is invalid, expired or revoked; log in again.";
/** Exchanges running in this isolate, by presented token: concurrent duplicates share one rotation. */
const inFlight = new Map<string, Promise<RefreshOutcome>>();

function refused(
  reason: RefreshFailureReason,
  subject: RefreshSubject = {},
  error = new GatewayError("invalid_grant", INVALID_GRANT),
): RefreshFailure {
  return { ok: false, error, reason, ...subject };
}

/** Why the member or organisation may no longer continue this session, if so. */
function sessionEnd(
  config: Config,
  membership: Membership | undefined,
  record: RefreshRecord,
  subject: RefreshSubject,
): RefreshFailure | undefined {
  if (!membership || membership.member.organisationId !== record.organisationId)
    return refused("member_deleted", subject);
  const { member, organisation } = membership;
  if (member.passwordChangedAt * 1000 > record.familyCreatedAt) return refused("password_changed", subject);
  if (member.status !== "active" || organisation.status !== "active") {
    return refused("suspended", subject, new GatewayError("account_suspended", "This account is suspended."));
  }
  if (!isEligible(config, organisation)) {
    return refused(
      "plan_not_eligible",
      subject,
      new GatewayError("plan_not_eligible", "This organisation's plan does not include API access."),
    );
  }
  return undefined;
}

async function exchange(config: Config, env: Bindings, token: string): Promise<RefreshOutcome> {
  const now = Date.now();
  const graceMs = config.refreshGraceSeconds * 1000;
  const session = await loadRefreshToken(env.TOKENS, token);
  if (!session) return refused("unknown");
  const { record } = session;
  const subject = { memberId: record.memberId, organisationId: record.organisationId, familyId: record.familyId };
  if (record.expiresAt <= now) return refused("expired", subject);
  if (session.revoked) return refused(session.revoked, subject);

  const membershipRead = findMembershipById(database(env.DB), record.memberId);
  membershipRead.catch(() => undefined); // read beside the KV checks; an early return must not leave it unhandled
  if (isForked(session, graceMs)) {
    await revokeFamily(config, env.TOKENS, record, "forked", now);
    return refused("forked", subject);
  }
  const graced = record.usedAt === undefined ? undefined : await graceSuccessor(token, session, graceMs, now);
  if (record.usedAt !== undefined && !graced) {
    await revokeFamily(config, env.TOKENS, record, "reused", now);
    return refused("reused", subject);
  }

  const membership = await membershipRead;
  const ended = sessionEnd(config, membership, record, subject);
  if (ended || !membership) {
    await revokeFamily(config, env.TOKENS, record, ended?.reason ?? "member_deleted", now);
    return ended ?? refused("member_deleted", subject);
  }
  const { member, organisation } = membership;
  const refresh = graced ?? (await rotateRefreshToken(config, env.TOKENS, token, session, now));
  const access = await issueAccessToken(
    config,
    {
      memberEntityId: member.id,
      memberEntityIdentifier: member.identifier,
      organisationEntityIdentifier: organisation.identifier,
      scope: memberScope(member.role, member.extraScopes),
    },
    Math.floor(now / 1000),
  );
  return { ok: true, access, refresh, graced: graced !== undefined, ...subject };
}

/**
 * Exchanges `token` for a new access token and its rotated successor, or says why not. A used
 * token outside the grace window, or a forked family, revokes the whole family; a deleted member,
 * a password change, a suspension or an ineligible plan ends the session too.
 */
export function refreshSession(config: Config, env: Bindings, token: string): Promise<RefreshOutcome> {
  if (!isRefreshToken(token))
    return Promise.resolve(
      refused("malformed", {}, new GatewayError("invalid_grant", "The refresh token is malformed.")),
    );
  let pending = inFlight.get(token);
  if (!pending) {
    pending = exchange(config, env, token).finally(() => inFlight.delete(token));
    inFlight.set(token, pending);
  }
  return pending;
}
