/** Checks email, password and optional domain against D1, without telling which one was wrong. */
import type { Config } from "../config";
import type { Refusal } from "../gateway-error";
import type { Logger } from "../log";
import { ineligibility } from "../policy/eligibility";
import type { LoginMembership } from "../storage/db";
import { normalizeDomain, normalizeEmail } from "./email";
import { DUMMY_PASSWORD_HASH } from "./password";
import { verifyStoredPassword } from "./stored-hash";

/** What a client submits to `POST /authenticate`. */
export interface LoginInput {
  email: string;
  password: string;
  domain?: string;
}

/** Why a credential check failed; recorded in the audit trail, never sent to the client. */
type LoginFailureReason = "invalid_credentials" | "domain_required" | "suspended" | "plan_not_eligible";

/** A refused credential check: why, the refusal the client gets, and the member when exactly one matched. */
interface LoginRefusal {
  ok: false;
  reason: LoginFailureReason;
  refusal: Refusal;
  memberId?: number;
  organisationId?: number;
}

/** Every membership with this (normalised) email, narrowed to one organisation domain when given. */
export type MembershipLookup = (email: string, domain: string | undefined) => Promise<LoginMembership[]>;

/** The result of {@link checkCredentials}. */
export type LoginOutcome = { ok: true; membership: LoginMembership; needsRehash: boolean } | LoginRefusal;

const REFUSAL_OF: Record<LoginFailureReason, Refusal> = {
  invalid_credentials: "invalidCredentials",
  domain_required: "domainRequired",
  suspended: "suspended",
  plan_not_eligible: "planNotEligible",
};

function refused(reason: LoginFailureReason, membership?: LoginMembership): LoginRefusal {
  return {
    ok: false,
    reason,
    refusal: REFUSAL_OF[reason],
    memberId: membership?.member.id,
    organisationId: membership?.organisation.id,
  };
}

/** The one membership whose password matches; each miss costs a verification and the same 401 (docs/security.md). */
export async function checkCredentials(
  config: Config,
  memberships: MembershipLookup,
  log: Logger,
  input: LoginInput,
): Promise<LoginOutcome> {
  const email = normalizeEmail(input.email);
  const domain = input.domain === undefined ? undefined : normalizeDomain(input.domain);
  const candidates = await memberships(email, domain);

  if (candidates.length === 0)
    await verifyStoredPassword(input.password, DUMMY_PASSWORD_HASH, config.passwordPepper, log);
  const matches: { membership: LoginMembership; needsRehash: boolean }[] = [];
  for (const candidate of candidates) {
    const check = await verifyStoredPassword(input.password, candidate.member.passwordHash, config.passwordPepper, log);
    if (check.ok) matches.push({ membership: candidate, needsRehash: check.needsRehash });
  }

  if (matches.length === 0) return refused("invalid_credentials", candidates.length === 1 ? candidates[0] : undefined);
  if (matches.length > 1) return refused("domain_required");
  const { membership, needsRehash } = matches[0]!;
  const ineligible = ineligibility(config, membership.member, membership.organisation);
  if (ineligible) return refused(ineligible === "suspended" ? "suspended" : "plan_not_eligible", membership);
  return { ok: true, membership, needsRehash };
}
