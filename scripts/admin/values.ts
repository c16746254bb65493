/** Validation of the values admin commands accept; pure, so it runs under Node and in the workerd tests. */
import { BCRYPT_MAX_COST, usableBcryptCost } from "../../src/credentials/bcrypt";
import { normalizeDomain, normalizeEmail } from "../../src/credentials/email";
import { MAX_PASSWORD_BYTES } from "../../src/credentials/password";
import { MEMBER_ROLES, ROLE_POLICY } from "../../src/policy/scopes";
import { isIdentifier } from "../../src/tokens/claims";

/** A bad argument or input row; the CLI prints the message and exits non-zero without writing. */
export class AdminInputError extends Error {
  override name = "AdminInputError";
}

/** Plans an organisation can be on; which of them may use the API is `API_PLANS` (wrangler.toml). */
export const KNOWN_PLANS = ["free", "professional", "enterprise"] as const;
/** Shortest password `member:create` accepts. */
const MIN_PASSWORD_LENGTH = 12;

/** A member role, or null for a member with granular scopes only. */
export type MemberRole = (typeof MEMBER_ROLES)[number] | null;

const DOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;
const EMAIL = /^[^\s@"<>,;]{1,64}@[^\s@"<>,;]{1,253}$/;
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,64}$/;
const MEMBER_IDENTIFIER_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const encoder = new TextEncoder();

function required(name: string, value: string | undefined): string {
  if (value === undefined || value.trim() === "") throw new AdminInputError(`${name} is required`);
  return value.trim();
}

/** An organisation or member identifier: the alphabet the gateway carries in headers and tokens. */
export function identifier(name: string, raw: string | undefined): string {
  const value = required(name, raw);
  if (!isIdentifier(value))
    throw new AdminInputError(`${name} must be 1–64 characters of A–Z a–z 0–9 . _ -, got ${JSON.stringify(value)}`);
  return value;
}

/** A member's numeric id (the `memberEntityId` claim), for a member that can no longer be found by email. */
export function memberId(name: string, raw: string | undefined): number {
  const value = required(name, raw);
  const id = /^[1-9][0-9]{0,15}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(id))
    throw new AdminInputError(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return id;
}

/** A display name: trimmed, 1–200 characters, no control characters. */
export function displayName(name: string, raw: string | undefined): string {
  const value = required(name, raw);
  if (value.length > 200 || /\p{Cc}/u.test(value))
    throw new AdminInputError(`${name} must be 1–200 characters without control characters`);
  return value;
}

/** An organisation's login domain, normalised the way `/authenticate` compares it. */
export function domain(raw: string | undefined): string {
  const value = normalizeDomain(required("--domain", raw));
  if (!DOMAIN.test(value))
    throw new AdminInputError(`--domain must be a DNS name such as acme.example, got ${JSON.stringify(value)}`);
  return value;
}

/** One of {@link KNOWN_PLANS}. */
export function plan(raw: string | undefined): string {
  const value = required("--plan", raw);
  if (!(KNOWN_PLANS as readonly string[]).includes(value))
    throw new AdminInputError(`--plan must be one of ${KNOWN_PLANS.join(", ")}, got ${JSON.stringify(value)}`);
  return value;
}

/** An email, normalised exactly as the gateway normalises it at login. */
export function email(name: string, raw: string | undefined): string {
  const value = normalizeEmail(required(name, raw));
  if (value.length > 320 || !EMAIL.test(value))
    throw new AdminInputError(`${name} is not an email address: ${JSON.stringify(value)}`);
  return value;
}

/** A role of MEMBER_ROLES; `none` (or empty, in a CSV) means granular scopes only. */
export function role(name: string, raw: string | undefined, allowEmpty = false): MemberRole {
  const value = raw?.trim() ?? "";
  if (value === "none" || (allowEmpty && value === "")) return null;
  if (!(MEMBER_ROLES as readonly string[]).includes(value)) {
    throw new AdminInputError(
      `${name} must be one of ${MEMBER_ROLES.join(", ")} or none, got ${JSON.stringify(value)}`,
    );
  }
  return value as MemberRole;
}

/**
 * Extra granular scopes (`getGrids`, `grids`, …), space- or comma-separated. Role names are refused:
 * a role is given with --role, and `organisation` belongs to integrations' dynamic tokens only.
 */
export function scopes(name: string, raw: string | undefined): string {
  const tokens = [...new Set((raw ?? "").split(/[\s,]+/).filter(Boolean))];
  for (const token of tokens) {
    if (!SCOPE_TOKEN.test(token)) throw new AdminInputError(`${name}: ${JSON.stringify(token)} is not a valid scope`);
    if (ROLE_POLICY.has(token))
      throw new AdminInputError(`${name}: ${token} is a role; give roles with --role (or the role column)`);
  }
  return tokens.join(" ");
}

/** A new member password: at least {@link MIN_PASSWORD_LENGTH} characters, at most the gateway's byte limit. */
export function password(raw: string): string {
  if ([...raw].length < MIN_PASSWORD_LENGTH)
    throw new AdminInputError(`the password must have at least ${MIN_PASSWORD_LENGTH} characters`);
  if (encoder.encode(raw).byteLength > MAX_PASSWORD_BYTES)
    throw new AdminInputError(`the password must be at most ${MAX_PASSWORD_BYTES} bytes`);
  return raw;
}

/**
 * A bcrypt hash (`$2a$`, `$2b$` or `$2y$`) of a cost the gateway verifies (4–{@link BCRYPT_MAX_COST}),
 * stored as-is and upgraded by the gateway at the next login.
 */
export function bcryptHash(name: string, raw: string | undefined): string {
  const value = raw?.trim() ?? "";
  if (usableBcryptCost(value) === undefined) {
    throw new AdminInputError(
      `${name} is not a bcrypt hash of cost 4–${BCRYPT_MAX_COST} ($2b$12$… with 53 characters after the cost)`,
    );
  }
  return value;
}

/** A random 6-character lower-case alphanumeric member identifier, like the seeded ones. */
export function newMemberIdentifier(): string {
  const size = MEMBER_IDENTIFIER_ALPHABET.length;
  const unbiased = 256 - (256 % size);
  let result = "";
  while (result.length < 6) {
    for (const byte of crypto.getRandomValues(new Uint8Array(8))) {
      if (byte < unbiased && result.length < 6) result += MEMBER_IDENTIFIER_ALPHABET[byte % size];
    }
  }
  return result;
}
