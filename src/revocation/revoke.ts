/** Revoking sessions: one instant, recorded in every store that must refuse what was issued at or before it. */
import type { Services } from "../services";
import { latestRevocations, revokeMemberSessionsAt, revokeOrganisationSessionsAt } from "../storage/members";
import type { RevocationSubjects } from "./list";
import { issueInstant, type Instant } from "./order";

/**
 * Revokes every access token and refresh session of `subjects` issued at or before now, and returns that instant:
 * the clock once D1 holds the revocation, or just after the subjects' latest revocations when those are later (the
 * tokens issued after them are issued just after them). D1's primary records it for refreshes and for the next issue
 * (src/revocation/order.ts), in one `first-primary` session; then the `Revocations` objects for access tokens, with
 * that session's bookmark after both its writes, so that logins and refreshes reading replicas see it
 * (src/revocation/reads.ts). It resolves once all of them have.
 */
export async function revokeSessions(services: Services, subjects: RevocationSubjects): Promise<Instant> {
  const writes = services.d1.session("first-primary");
  const { db } = writes;
  const members = subjects.members ?? [];
  const organisations = subjects.organisations ?? [];
  const first = issueInstant(services.now(), ...(await latestRevocations(db, members, organisations)));
  await Promise.all([
    ...members.map((memberId) => revokeMemberSessionsAt(db, memberId, first)),
    ...organisations.map((identifier) => revokeOrganisationSessionsAt(db, identifier, first)),
  ]);
  // a login or refresh that read D1 before that write issued at most at the clock now: the revocation covers it
  const at = Math.max(services.now(), first);
  await Promise.all([
    ...members.map((memberId) => services.refreshStore.revokeMemberSessions(memberId, at, db)),
    ...organisations.map((identifier) => revokeOrganisationSessionsAt(db, identifier, at)),
  ]);
  await services.revocations.revoke(services.config, subjects, at, writes.bookmark() ?? undefined);
  return at;
}
