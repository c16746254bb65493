/** The claims of a verified access token, and the strict checks that turn a JSON payload into them. */
import { GatewayError } from "../gateway-error";
import { checkAudience } from "./audience";

/** Which family of secret signed a token. */
export type SecretType = "fixed" | "dynamic";

/** Claims of an access token after signature and claim checks; what the gateway forwards. */
export interface AccessClaims {
  iss?: string;
  jti?: string;
  iat?: number;
  nbf?: number;
  exp?: number;
  memberEntityId?: number;
  memberEntityIdentifier: string;
  organisationEntityIdentifier: string;
  scope: string;
  secretType: SecretType;
}

const IDENTIFIER = /^[A-Za-z0-9._-]{1,64}$/;
/** RFC 6749 §3.3 scope-token characters, space separated. */
const SCOPE = /^(?:[\x21\x23-\x5B\x5D-\x7E]+(?: [\x21\x23-\x5B\x5D-\x7E]+)*)?$/;
const JTI = /^[\x21-\x7E]{1,128}$/;

/** True for a member, organisation or key identifier the gateway can carry in a header or a storage key. */
export function isIdentifier(value: string): boolean {
  return IDENTIFIER.test(value);
}

const MEMBER_ENTITY_ID = /^(?:0|[1-9][0-9]{0,15})$/;

function memberEntityIdOf(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const id = typeof value === "string" && MEMBER_ENTITY_ID.test(value) ? Number(value) : value;
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0)
    invalid("memberEntityId must be a string of decimal digits or a non-negative integer");
  return id;
}

/** What claims are checked against; `now` and `clockSkew` in seconds. */
export interface ClaimRules {
  issuer: string;
  audience: string;
  clockSkew: number;
  now: number;
}

function invalid(detail: string): never {
  throw new GatewayError("invalid_token", detail);
}

function numericDate(payload: Record<string, unknown>, name: "exp" | "nbf" | "iat"): number | undefined {
  const value = payload[name];
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0)
    invalid(`${name} must be an integer NumericDate`);
  return value;
}

function optionalString(payload: Record<string, unknown>, name: string): string | undefined {
  const value = payload[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string") invalid(`${name} must be a string`);
  return value;
}

/** The secret family a payload claims; validated before a key is chosen. */
export function secretTypeOf(payload: Record<string, unknown>): SecretType {
  const value = payload.secretType;
  if (value === undefined || value === "fixed") return "fixed";
  if (value === "dynamic") return "dynamic";
  return invalid('secretType must be "fixed" or "dynamic"');
}

function checkTimes(
  exp: number | undefined,
  nbf: number | undefined,
  iat: number | undefined,
  now: number,
  clockSkew: number,
): void {
  if (exp !== undefined && exp + clockSkew <= now) invalid("token expired");
  if (nbf !== undefined && nbf - clockSkew > now) invalid("token not yet valid");
  if (iat !== undefined && iat - clockSkew > now) invalid("token issued in the future");
}

/** Checks a signature-verified payload against the contract in docs/api.md (What every token must satisfy). */
export function checkClaims(payload: Record<string, unknown>, secretType: SecretType, rules: ClaimRules): AccessClaims {
  const exp = numericDate(payload, "exp");
  const nbf = numericDate(payload, "nbf");
  const iat = numericDate(payload, "iat");
  const iss = optionalString(payload, "iss");
  const jti = optionalString(payload, "jti");
  const { now, clockSkew } = rules;

  if (secretType === "fixed") {
    if (iss !== rules.issuer) invalid("unexpected issuer");
    if (exp === undefined) invalid("exp is required");
    if (jti === undefined) invalid("jti is required");
  }
  checkAudience(payload.aud, rules.audience);
  checkTimes(exp, nbf, iat, now, clockSkew);
  if (jti !== undefined && !JTI.test(jti)) invalid("jti is malformed");

  const member = payload.memberEntityIdentifier;
  const organisation = payload.organisationEntityIdentifier;
  const scope = payload.scope;
  const memberEntityId = payload.memberEntityId;
  if (typeof member !== "string" || !IDENTIFIER.test(member)) invalid("memberEntityIdentifier is missing or malformed");
  if (typeof organisation !== "string" || !IDENTIFIER.test(organisation))
    invalid("organisationEntityIdentifier is missing or malformed");
  if (typeof scope !== "string" || !SCOPE.test(scope)) invalid("scope must be a space-delimited string");
  const memberId = memberEntityIdOf(memberEntityId);

  return {
    iss,
    jti,
    iat,
    nbf,
    exp,
    memberEntityId: memberId,
    memberEntityIdentifier: member,
    organisationEntityIdentifier: organisation,
    scope,
    secretType,
  };
}

/** Re-checks `exp`/`nbf`/`iat` of claims {@link checkClaims} accepted under the same issuer and audience. */
export function recheckClaimTimes(claims: AccessClaims, rules: ClaimRules): AccessClaims {
  checkTimes(claims.exp, claims.nbf, claims.iat, rules.now, rules.clockSkew);
  return claims;
}
