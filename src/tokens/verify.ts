/** HS256 compact-JWS verification: strict format, cached header parses, cached keys, strict claims. */
import { GatewayError } from "../errors";
import { decodeBase64Url, decodeBase64UrlText, isCanonicalBase64Url } from "./base64url";
import { checkClaims, isIdentifier, secretTypeOf, type AccessClaims, type ClaimRules } from "./claims";
import type { FixedKeyRing, SigningKey } from "./keys";

/** Looks up the live dynamic keys of an organisation (`kid` narrows to one); empty when none. */
export type DynamicKeyResolver = (organisation: string, kid: string | undefined) => Promise<readonly SigningKey[]>;

/** What {@link verifyAccessToken} checks against. */
export interface VerifyOptions {
  fixed: FixedKeyRing;
  /** Absent: dynamic-secret tokens are refused. */
  dynamic?: DynamicKeyResolver;
  rules: ClaimRules;
}

/** The protected header fields the gateway accepts. */
interface JwsHeader {
  alg: "HS256";
  kid?: string;
}

/** A compact JWS split and decoded, its signature not yet checked. */
interface DecodedJws {
  header: JwsHeader;
  payload: Record<string, unknown>;
  signingInput: Uint8Array<ArrayBuffer>;
  signature: Uint8Array<ArrayBuffer>;
}

/** Three base64url segments; an HS256 signature is 32 bytes, i.e. exactly 43 characters. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/;
const MAX_TOKEN_LENGTH = 8192;
const FORBIDDEN_HEADER_PARAMS = ["crit", "jku", "jwk", "x5u", "x5c", "zip", "b64"] as const;
const ALLOWED_TYP = new Set(["JWT", "at+jwt", "application/at+jwt"]);
const HEADER_CACHE_LIMIT = 256;

const encoder = new TextEncoder();
/** Parsed headers by their encoded segment: a gateway sees few distinct headers, so this skips most header parses. */
const headerCache = new Map<string, JwsHeader>();

function invalid(detail: string): never {
  throw new GatewayError("invalid_token", detail);
}

function parseJsonObject(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(decodeBase64UrlText(segment));
  } catch {
    invalid(`${what} is not base64url-encoded JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) invalid(`${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

function parseHeader(segment: string): JwsHeader {
  const cached = headerCache.get(segment);
  if (cached) return cached;
  const raw = parseJsonObject(segment, "header");
  if (raw.alg !== "HS256") invalid("alg must be HS256");
  for (const param of FORBIDDEN_HEADER_PARAMS) if (param in raw) invalid(`header parameter ${param} is not accepted`);
  if (raw.typ !== undefined && (typeof raw.typ !== "string" || !ALLOWED_TYP.has(raw.typ))) invalid("typ must be JWT");
  if (raw.kid !== undefined && (typeof raw.kid !== "string" || !isIdentifier(raw.kid))) invalid("kid is malformed");
  const header: JwsHeader = raw.kid === undefined ? { alg: "HS256" } : { alg: "HS256", kid: raw.kid };
  if (headerCache.size >= HEADER_CACHE_LIMIT) headerCache.clear();
  headerCache.set(segment, header);
  return header;
}

/** Splits and decodes a compact JWS after checking its exact shape; nothing is trusted yet. */
function decodeJws(token: string): DecodedJws {
  if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) invalid("token is not a compact JWS");
  const firstDot = token.indexOf(".");
  const lastDot = token.lastIndexOf(".");
  const headerSegment = token.slice(0, firstDot);
  const payloadSegment = token.slice(firstDot + 1, lastDot);
  const signatureSegment = token.slice(lastDot + 1);
  if (!isCanonicalBase64Url(headerSegment) || !isCanonicalBase64Url(payloadSegment) || !isCanonicalBase64Url(signatureSegment)) {
    invalid("token is not canonical base64url");
  }
  return {
    header: parseHeader(headerSegment),
    payload: parseJsonObject(payloadSegment, "payload"),
    signingInput: encoder.encode(token.slice(0, lastDot)) as Uint8Array<ArrayBuffer>,
    signature: decodeBase64Url(signatureSegment),
  };
}

function fixedCandidates(ring: FixedKeyRing, kid: string | undefined): readonly SigningKey[] {
  if (kid === undefined) return ring.all;
  const match = ring.all.find((candidate) => candidate.kid === kid);
  return match ? [match] : invalid("unknown key id");
}

async function signedByAny(jws: DecodedJws, keys: readonly SigningKey[]): Promise<boolean> {
  for (const { key } of keys) {
    if (await crypto.subtle.verify("HMAC", key, jws.signature, jws.signingInput)) return true;
  }
  return false;
}

/**
 * Verifies a bearer token and returns its claims, or throws `GatewayError("invalid_token")`.
 * Fixed-secret tokens need no I/O; dynamic ones consult `options.dynamic` for their organisation's keys.
 */
export async function verifyAccessToken(token: string, options: VerifyOptions): Promise<AccessClaims> {
  const jws = decodeJws(token);
  const secretType = secretTypeOf(jws.payload);
  let keys: readonly SigningKey[];
  if (secretType === "fixed") {
    keys = fixedCandidates(options.fixed, jws.header.kid);
  } else {
    const organisation = jws.payload.organisationEntityIdentifier;
    if (!options.dynamic) invalid("dynamic-secret tokens are not accepted here");
    if (typeof organisation !== "string" || !isIdentifier(organisation)) invalid("organisationEntityIdentifier is missing or malformed");
    keys = await options.dynamic(organisation, jws.header.kid);
  }
  if (keys.length === 0 || !(await signedByAny(jws, keys))) invalid("signature verification failed");
  return checkClaims(jws.payload, secretType, options.rules);
}
