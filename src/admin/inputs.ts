/** What the admin routes accept, validated field by field: each failure is a 400 `invalid_request` naming the field (`npm run admin` checks import files with the same rules). */
import { BCRYPT_MAX_COST, usableBcryptCost } from "../credentials/bcrypt";
import { normalizeDomain, normalizeEmail } from "../credentials/email";
import { MAX_PASSWORD_BYTES } from "../credentials/password";
import { GatewayError } from "../gateway-error";
import { MEMBER_ROLES, ROLE_POLICY } from "../policy/scopes";
import type { MemberRole } from "../storage/schema";
import { isIdentifier } from "../tokens/claims";

/** Plans an organisation can be on; which of them may use the API is `API_PLANS` (wrangler.toml). */
const KNOWN_PLANS = ["free", "professional", "enterprise"] as const;
const MIN_PASSWORD_LENGTH = 12;

/** A parsed JSON body whose fields are read one by one. */
export type AdminBody = Readonly<Record<string, unknown>>;

const DOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;
const EMAIL = /^[^\s@"<>,;]{1,64}@[^\s@"<>,;]{1,253}$/;
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,64}$/;
const MEMBER_IDENTIFIER_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const encoder = new TextEncoder();

/** Throws the 400 of an admin input. */
export function invalidInput(message: string): never {
  throw new GatewayError("invalid_request", message);
}

/** The body as an object whose fields are all in `known` (a JSON object of anything else is a 400). */
export function adminBody(raw: unknown, known: readonly string[]): AdminBody {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) invalidInput("The body must be a JSON object.");
  const unknown = Object.keys(raw).filter((key) => !known.includes(key));
  if (unknown.length > 0)
    invalidInput(`Unknown field(s): ${unknown.join(", ")}; this route takes ${known.join(", ")}.`);
  return raw as AdminBody;
}

/** A string field, or undefined when absent; any other type is a 400. */
export function text(body: AdminBody, name: string): string | undefined {
  const value = Object.hasOwn(body, name) ? body[name] : undefined;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") invalidInput(`${name} must be a string`);
  return value;
}

/** A string field checked by `parse`, or undefined when absent. */
export function optional<T>(
  body: AdminBody,
  name: string,
  parse: (name: string, raw: string | undefined) => T,
): T | undefined {
  return Object.hasOwn(body, name) && body[name] !== undefined ? parse(name, text(body, name)) : undefined;
}

function required(name: string, value: string | undefined): string {
  if (value === undefined || value.trim() === "") invalidInput(`${name} is required`);
  return value.trim();
}

/** An organisation or member identifier: the alphabet the gateway carries in headers and tokens. */
export function identifier(name: string, raw: string | undefined): string {
  const value = required(name, raw);
  if (!isIdentifier(value))
    invalidInput(`${name} must be 1–64 characters of A–Z a–z 0–9 . _ -, got ${JSON.stringify(value)}`);
  return value;
}

/** A member's numeric id (the `memberEntityId` claim): a positive integer, as a number or in digits. */
export function memberId(name: string, raw: unknown): number {
  const digits = typeof raw === "number" ? String(raw) : typeof raw === "string" ? raw.trim() : "";
  const id = /^[1-9][0-9]{0,15}$/.test(digits) ? Number(digits) : Number.NaN;
  if (!Number.isSafeInteger(id)) invalidInput(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return id;
}

/** A display name: trimmed, 1–200 characters, no control characters. */
export function displayName(name: string, raw: string | undefined): string {
  const value = required(name, raw);
  if (value.length > 200 || /\p{Cc}/u.test(value))
    invalidInput(`${name} must be 1–200 characters without control characters`);
  return value;
}

/** An organisation's login domain, normalised the way `/authenticate` compares it. */
export function domain(name: string, raw: string | undefined): string {
  const value = normalizeDomain(required(name, raw));
  if (!DOMAIN.test(value))
    invalidInput(`${name} must be a DNS name such as acme.example, got ${JSON.stringify(value)}`);
  return value;
}

/** One of {@link KNOWN_PLANS}. */
export function plan(name: string, raw: string | undefined): string {
  const value = required(name, raw);
  if (!(KNOWN_PLANS as readonly string[]).includes(value))
    invalidInput(`${name} must be one of ${KNOWN_PLANS.join(", ")}, got ${JSON.stringify(value)}`);
  return value;
}

/** An email, normalised exactly as the gateway normalises it at login. */
export function email(name: string, raw: string | undefined): string {
  const value = normalizeEmail(required(name, raw));
  if (value.length > 320 || !EMAIL.test(value))
    invalidInput(`${name} is not an email address: ${JSON.stringify(value)}`);
  return value;
}

/** A role of MEMBER_ROLES; `none` (or empty, where `allowEmpty`) means granular scopes only. */
export function role(name: string, raw: string | undefined, allowEmpty = false): MemberRole {
  const value = raw?.trim() ?? "";
  if (value === "none" || (allowEmpty && value === "")) return null;
  if (!(MEMBER_ROLES as readonly string[]).includes(value))
    invalidInput(`${name} must be one of ${MEMBER_ROLES.join(", ")} or none, got ${JSON.stringify(value)}`);
  return value as MemberRole;
}

/** Extra granular scopes (`getGrids`, `grids`, …), space- or comma-separated; role names are refused. */
export function scopes(name: string, raw: string | undefined): string {
  const tokens = [...new Set((raw ?? "").split(/[\s,]+/).filter(Boolean))];
  for (const token of tokens) {
    if (!SCOPE_TOKEN.test(token)) invalidInput(`${name}: ${JSON.stringify(token)} is not a valid scope`);
    if (ROLE_POLICY.has(token)) invalidInput(`${name}: ${token} is a role; give roles as the role`);
  }
  return tokens.join(" ");
}

/** A new member password: at least {@link MIN_PASSWORD_LENGTH} characters, at most the gateway's byte limit. */
export function password(name: string, raw: string | undefined): string {
  if (raw === undefined || [...raw].length < MIN_PASSWORD_LENGTH)
    invalidInput(`${name} must have at least ${MIN_PASSWORD_LENGTH} characters`);
  if (encoder.encode(raw).byteLength > MAX_PASSWORD_BYTES)
    invalidInput(`${name} must be at most ${MAX_PASSWORD_BYTES} bytes`);
  return raw;
}

/** A bcrypt hash (`$2a$`, `$2b$`, `$2y$`) of a cost the gateway verifies (4–{@link BCRYPT_MAX_COST}), upgraded at next login. */
export function bcryptHash(name: string, raw: string | undefined): string {
  const value = raw?.trim() ?? "";
  if (usableBcryptCost(value) === undefined)
    invalidInput(
      `${name} is not a bcrypt hash of cost 4–${BCRYPT_MAX_COST} ($2b$12$… with 53 characters after the cost)`,
    );
  return value;
}

/** A label of a dynamic secret: at most 100 characters, no control characters. */
export function label(name: string, raw: string | undefined): string {
  const value = raw ?? "";
  if (value.length > 100 || /\p{Cc}/u.test(value))
    invalidInput(`${name} must be at most 100 characters without control characters`);
  return value;
}

/** An OpenID Provider's issuer URL (https, or http on loopback), kept as given: its discovery document must name it. */
export function issuer(name: string, raw: string | undefined): string {
  const value = required(name, raw);
  const url = URL.parse(value);
  const loopback = url !== null && ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
  if (
    !url ||
    !(url.protocol === "https:" || (url.protocol === "http:" && loopback)) ||
    /[\s?#]/.test(value) ||
    url.username ||
    url.password ||
    value.length > 1024
  )
    invalidInput(
      `${name} must be the identity provider's https issuer URL (e.g. https://login.example.com/tenant/v2.0), got ${JSON.stringify(value)}`,
    );
  return value;
}

/** An OAuth client id: trimmed, 1–255 printable ASCII characters. */
export function clientId(name: string, raw: string | undefined): string {
  const value = required(name, raw);
  if (!/^[\x21-\x7e]{1,255}$/.test(value)) invalidInput(`${name} must be 1–255 printable ASCII characters`);
  return value;
}

/** An OAuth client secret, exactly as given: 1–1024 printable ASCII characters. */
export function clientSecret(name: string, raw: string | undefined): string {
  if (raw === undefined || !/^[\x20-\x7e]{1,1024}$/.test(raw))
    invalidInput(`${name} must be 1–1024 printable ASCII characters`);
  return raw;
}

const MAX_SSO_DOMAINS = 50;

/** The email domains of a single sign-on connection: an array of 1–50 domains, normalised, duplicates dropped. */
export function domains(body: AdminBody, name: string): string[] | undefined {
  const value = Object.hasOwn(body, name) ? body[name] : undefined;
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_SSO_DOMAINS)
    invalidInput(`${name} must be an array of 1–${MAX_SSO_DOMAINS} domains`);
  return [
    ...new Set(
      value.map((entry, index) => {
        if (typeof entry !== "string") invalidInput(`${name}[${index}] must be a string`);
        return domain(`${name}[${index}]`, entry);
      }),
    ),
  ];
}

/** A boolean field, or undefined when absent. */
export function flag(body: AdminBody, name: string): boolean | undefined {
  const value = Object.hasOwn(body, name) ? body[name] : undefined;
  if (value !== undefined && typeof value !== "boolean") invalidInput(`${name} must be true or false`);
  return value;
}

/** A whole number from `min` to `max`, or `fallback` when absent. */
export function count(body: AdminBody, name: string, min: number, max: number, fallback: number): number {
  const value = Object.hasOwn(body, name) ? body[name] : undefined;
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max)
    invalidInput(`${name} must be a whole number from ${min} to ${max}`);
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
