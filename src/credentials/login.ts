/** Checks email, password and optional domain against D1, without telling which one was wrong. */
import type { Config } from "../config";
import { GatewayError } from "../errors";
import { isEligible } from "../policy/plan";
import { database, findMemberships, type Membership } from "../storage/db";
import { normalizeDomain, normalizeEmail } from "./email";
import { DUMMY_PASSWORD_HASH, verifyPassword } from "./password";

/** What a client submits to `POST /authenticate`. */
export interface LoginInput {
  email: string;
  password: string;
  domain?: string;
}

const INVALID_CREDENTIALS = "The email, password or domain is incorrect.";

/**
 * Returns the one membership whose password matches. Unknown email, wrong password and wrong
 * domain all cost at least one PBKDF2 derivation and end in the same 401; the 403s and the 409
 * are only ever given after a password verified.
 */
export async function authenticateMember(config: Config, d1: D1Database, input: LoginInput): Promise<Membership> {
  const email = normalizeEmail(input.email);
  const domain = input.domain === undefined ? undefined : normalizeDomain(input.domain);
  const candidates = await findMemberships(database(d1), email, domain);

  const matches: Membership[] = [];
  if (candidates.length === 0) {
    await verifyPassword(input.password, DUMMY_PASSWORD_HASH, config.passwordPepper);
  }
  for (const candidate of candidates) {
    if (await verifyPassword(input.password, candidate.member.passwordHash, config.passwordPepper)) matches.push(candidate);
  }

  if (matches.length === 0) throw new GatewayError("invalid_credentials", INVALID_CREDENTIALS);
  if (matches.length > 1) {
    throw new GatewayError("domain_required", "This account belongs to several organisations; add the organisation's domain.");
  }
  const match = matches[0]!;
  if (match.member.status !== "active" || match.organisation.status !== "active") {
    throw new GatewayError("account_suspended", "This account is suspended.");
  }
  if (!isEligible(config, match.organisation)) {
    throw new GatewayError("plan_not_eligible", "This organisation's plan does not include API access.");
  }
  return match;
}
