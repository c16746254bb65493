/** Revoking sessions: one instant, recorded in every store that must refuse what was issued at or before it. */
import type { Gateway } from "../gateway";
import { latestRevocations, revokeOrganisationSessionsAt } from "../storage/members";
import { issueInstant, type Instant } from "./order";

/** Whose tokens and sessions to revoke. */
export interface RevocationSubjects {
  members?: readonly number[];
  organisations?: readonly string[];
}

/**
 * Revokes every access token and refresh session of `subjects` issued at or before now, and returns that instant:
 * the clock, or just after the subjects' latest revocations when those are later (the tokens issued after them
 * are issued just after them). D1 records it for refreshes and for the next issue (src/revocation/order.ts), the
 * `Revocations` objects for access tokens; it resolves once all of them have.
 */
export async function revokeSessions(gateway: Gateway, subjects: RevocationSubjects): Promise<Instant> {
  const latest = await latestRevocations(gateway.db, subjects.members ?? [], subjects.organisations ?? []);
  const at = issueInstant(gateway.now(), ...latest);
  await Promise.all([
    ...(subjects.members ?? []).map((memberId) => gateway.refreshStore.revokeMemberSessions(memberId, at)),
    ...(subjects.organisations ?? []).map((identifier) => revokeOrganisationSessionsAt(gateway.db, identifier, at)),
    gateway.revocations.revoke(gateway.config, subjects, at),
  ]);
  return at;
}
