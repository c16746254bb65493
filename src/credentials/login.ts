/** Checks email, password and optional domain against D1, without telling which one was wrong. */
import type { Config } from "../config";
import { GatewayError } from "../errors";
import { isEligible } from "../policy/plan";
import { database, findMemberships, type Membership } from "../storage/db";
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
export type LoginFailureReason = "invalid_credentials" | "domain_required" | "suspended" | "plan_not_eligible";

/** The result of {@link checkCredentials}. */
export type LoginOutcome =
  | { ok: true; membership: Membership; needsRehash: boolean }
  | { ok: false; reason: LoginFailureReason; error: GatewayError; memberId?: number; organisationId?: number };

const INVALID_CREDENTIALS = "The email, password or domain is incorrect.";

function refused(reason: LoginFailureReason, error: GatewayError, membership?: Membership): LoginOutcome {
  return { ok: false, reason, error, memberId: membership?.member.id, organisationId: membership?.organisation.id };
}

/**
 * Finds the one membership whose password matches. Unknown email, wrong password and wrong domain
 * all cost at least one password verification and end in the same 401; the 403s and the 409 are
 * only ever given after a password verified. A failed check names the member only when the email
 * (and domain) matched exactly one membership, for the audit trail.
 */
export async function checkCredentials(config: Config, d1: D1Database, input: LoginInput): Promise<LoginOutcome> {
  const email = normalizeEmail(input.email);
  const domain = input.domain === undefined ? undefined : normalizeDomain(input.domain);
  const candidates = await findMemberships(database(d1), email, domain);

  if (candidates.length === 0) await verifyStoredPassword(input.password, DUMMY_PASSWORD_HASH, config.passwordPepper);
  const matches: { membership: Membership; needsRehash: boolean }[] = [];
  for (const candidate of candidates) {
    const check = await verifyStoredPassword(input.password, candidate.member.passwordHash, config.passwordPepper);
    if (check.ok) matches.push({ membership: candidate, needsRehash: check.needsRehash });
  }

  if (matches.length === 0) {
    return refused(
      "invalid_credentials",
      new GatewayError("invalid_credentials", INVALID_CREDENTIALS),
      candidates.length === 1 ? candidates[0] : undefined,
    );
  }
  if (matches.length > 1) {
    return refused(
      "domain_required",
      new GatewayError(
        "domain_required",
        "This account belongs to several organisations; add the organisation's domain.",
      ),
    );
  }
  const { membership, needsRehash } = matches[0]!;
  if (membership.member.status !== "active" || membership.organisation.status !== "active") {
    return refused("suspended", new GatewayError("account_suspended", "This account is suspended."), membership);
  }
  if (!isEligible(config, membership.organisation)) {
    return refused(
      "plan_not_eligible",
      new GatewayError("plan_not_eligible", "This organisation's plan does not include API access."),
      membership,
    );
  }
  return { ok: true, membership, needsRehash };
}
