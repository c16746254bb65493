/** Revoking sessions: one instant, recorded in every store that must refuse what was issued at or before it. */
import type { Config } from "../config";
import type { D1Access, D1Session } from "../storage/db";
import { latestRevocations, revokeMemberSessionsAt, revokeOrganisationSessionsAt } from "../storage/members";
import type { RevocationList, RevocationSubjects, WrittenSubjects } from "./list";
import { issueInstant, type Instant } from "./order";

/** What revoking reads and writes: the gateway's D1, clock, refresh-session markers and revocation list. */
export interface RevocationServices {
  readonly config: Pick<Config, "accessTokenTtl" | "clockSkew">;
  readonly d1: D1Access;
  readonly now: () => number;
  readonly refreshStore: { markMemberSessionsRevoked(memberId: number, at: Instant): Promise<void> };
  readonly revocations: Pick<RevocationList, "revoke" | "remember">;
}

/**
 * Revokes every access token and refresh session of `subjects` issued at or before now, in D1 and the `Revocations`
 * objects, and returns that instant (docs/security.md § Revocation order). `writes`: the caller's `first-primary`
 * session when it wrote the subjects' rows just before.
 */
export async function revokeSessions(
  services: RevocationServices,
  subjects: RevocationSubjects,
  writes: D1Session = services.d1.session("first-primary"),
): Promise<Instant> {
  const { db } = writes;
  const members = subjects.members ?? [];
  const organisations = subjects.organisations ?? [];
  const first = issueInstant(services.now(), ...(await latestRevocations(db, members, organisations)));
  await Promise.all([
    ...members.map((memberId) => revokeMemberSessionsAt(db, memberId, first)),
    ...organisations.map((identifier) => revokeOrganisationSessionsAt(db, identifier, first)),
  ]);
  await rememberWrites(services, subjects, writes);
  // a login or refresh that has seen neither that write nor its bookmark issued at most at the clock now
  const at = Math.max(services.now(), first);
  await Promise.all([
    ...members.map((memberId) => revokeMemberSessionsAt(db, memberId, at)),
    ...organisations.map((identifier) => revokeOrganisationSessionsAt(db, identifier, at)),
  ]);
  await Promise.all([
    ...members.map((memberId) => services.refreshStore.markMemberSessionsRevoked(memberId, at)),
    services.revocations.revoke(services.config, subjects, at, writes.bookmark() ?? undefined),
  ]);
  return at;
}

/** Keeps the bookmark of `writes` (a `first-primary` session that changed `subjects`' rows) for reads from replicas. */
export async function rememberWrites(
  services: RevocationServices,
  subjects: WrittenSubjects,
  writes: D1Session,
): Promise<void> {
  const bookmark = writes.bookmark();
  if (bookmark !== null) await services.revocations.remember(services.config, subjects, bookmark);
}
