/** Revoking sessions: one instant, recorded in every store that must refuse what was issued at or before it. */
import type { Services } from "../services";
import { latestRevocations, revokeOrganisationSessionsAt } from "../storage/members";
import type { RevocationSubjects } from "./list";
import { issueInstant, type Instant } from "./order";

/**
 * Revokes every access token and refresh session of `subjects` issued at or before now, and returns that instant:
 * the clock, or just after the subjects' latest revocations when those are later (the tokens issued after them
 * are issued just after them). D1's primary records it for refreshes and for the next issue
 * (src/revocation/order.ts); then the `Revocations` objects record it for access tokens, with the D1 bookmark of
 * those writes, so that logins and refreshes reading replicas see it (src/revocation/reads.ts). It resolves once
 * all of them have.
 */
export async function revokeSessions(services: Services, subjects: RevocationSubjects): Promise<Instant> {
  const writes = services.d1.session("first-primary");
  const latest = await latestRevocations(writes.db, subjects.members ?? [], subjects.organisations ?? []);
  const at = issueInstant(services.now(), ...latest);
  await Promise.all([
    ...(subjects.members ?? []).map((memberId) => services.refreshStore.revokeMemberSessions(memberId, at, writes.db)),
    ...(subjects.organisations ?? []).map((identifier) => revokeOrganisationSessionsAt(writes.db, identifier, at)),
  ]);
  await services.revocations.revoke(services.config, subjects, at, writes.bookmark() ?? undefined);
  return at;
}
