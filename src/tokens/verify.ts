/** HS256 compact-JWS verification: strict format, cached header parses, cached keys, strict claims. */
import { LruCache } from "../cache/lru";
import type { WaitUntil } from "../config";
import { GatewayError } from "../gateway-error";
import type { Logger } from "../log";
import { decodeBase64UrlText, decodeShortBase64Url, isCanonicalBase64Url } from "./base64url";
import {
  checkClaims,
  isIdentifier,
  recheckClaimTimes,
  secretTypeOf,
  type AccessClaims,
  type ClaimRules,
  type SecretType,
} from "./claims";
import type { FixedKeyRing, SigningKey } from "./keys";

/** Where dynamic-secret keys come from (KV and D1, see `dynamic-secrets/resolve.ts`). */
export interface DynamicKeySource {
  /** The live dynamic keys of an organisation (`kid` narrows to one); empty when none. */
  keysFor(ctx: WaitUntil, log: Logger, organisation: string, kid: string | undefined): Promise<readonly SigningKey[]>;
}

interface JwsHeader {
  alg: "HS256";
  kid?: string;
}

interface DecodedJws {
  header: JwsHeader;
  payload: Readonly<Record<string, unknown>>;
  signingInputText: string;
  signingInput: Uint8Array<ArrayBuffer>;
  signatureSegment: string;
  known: KnownInput | undefined;
}

interface KnownInput {
  header: JwsHeader;
  payload: Readonly<Record<string, unknown>>;
  bytes: Uint8Array<ArrayBuffer>;
  claims: Readonly<AccessClaims>;
  issuer: string;
  audience: string;
  signature: string;
  key: CryptoKey;
}

/** Three base64url segments; an HS256 signature is 32 bytes, i.e. exactly 43 characters. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/;
const SIGNATURE_SEGMENT = /^[A-Za-z0-9_-]{43}$/;
const MAX_TOKEN_LENGTH = 8192;
const FORBIDDEN_HEADER_PARAMS = ["crit", "jku", "jwk", "x5u", "x5c", "zip", "b64"] as const;
const ALLOWED_TYP = new Set(["JWT", "at+jwt", "application/at+jwt"]);
const HEADER_CACHE_LIMIT = 256;
const KNOWN_INPUTS_LIMIT = 1024;

const encoder = new TextEncoder();

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

function parseHeader(segment: string, headerCache: LruCache<string, JwsHeader>): JwsHeader {
  const cached = headerCache.get(segment);
  if (cached) return cached;
  const raw = parseJsonObject(segment, "header");
  if (raw.alg !== "HS256") invalid("alg must be HS256");
  for (const param of FORBIDDEN_HEADER_PARAMS) if (param in raw) invalid(`header parameter ${param} is not accepted`);
  if (raw.typ !== undefined && (typeof raw.typ !== "string" || !ALLOWED_TYP.has(raw.typ))) invalid("typ must be JWT");
  if (raw.kid !== undefined && (typeof raw.kid !== "string" || !isIdentifier(raw.kid))) invalid("kid is malformed");
  const header: JwsHeader = raw.kid === undefined ? { alg: "HS256" } : { alg: "HS256", kid: raw.kid };
  headerCache.set(segment, header);
  return header;
}

/** Whether two signature segments are equal, in time that does not depend on where they differ. */
function sameSignature(sent: string, verified: string): boolean {
  if (sent.length !== verified.length) return false;
  let difference = 0;
  for (let i = 0; i < sent.length; i++) difference |= sent.charCodeAt(i) ^ verified.charCodeAt(i);
  return difference === 0;
}

function verifiedBefore(jws: DecodedJws, keys: readonly SigningKey[]): boolean {
  const known = jws.known;
  if (known === undefined || !sameSignature(jws.signatureSegment, known.signature)) return false;
  for (const candidate of keys) if (candidate.key === known.key) return true;
  return false;
}

function fixedCandidates(ring: FixedKeyRing, kid: string | undefined): readonly SigningKey[] {
  if (kid === undefined) return ring.all;
  const match = ring.all.find((candidate) => candidate.kid === kid);
  return match ? [match] : invalid("unknown key id");
}

/** Verifies access tokens; owns the isolate's caches of parsed headers and known signing inputs. */
export class TokenVerifier {
  private readonly headerCache = new LruCache<string, JwsHeader>({ maxEntries: HEADER_CACHE_LIMIT });
  private readonly knownInputs = new LruCache<string, KnownInput>({ maxEntries: KNOWN_INPUTS_LIMIT });

  /** Returns a bearer token's verified claims or throws `invalid_token`; dynamic-secret tokens need `dynamic`. */
  async verify(
    token: string,
    fixed: FixedKeyRing,
    rules: ClaimRules,
    dynamic: DynamicKeySource | undefined,
    ctx: WaitUntil,
    log: Logger,
  ): Promise<AccessClaims> {
    const jws = this.decodeJws(token);
    const secretType = secretTypeOf(jws.payload);
    let keys: readonly SigningKey[];
    if (secretType === "fixed") {
      keys = fixedCandidates(fixed, jws.header.kid);
    } else {
      const organisation = jws.payload.organisationEntityIdentifier;
      if (!dynamic) invalid("dynamic-secret tokens are not accepted here");
      if (typeof organisation !== "string" || !isIdentifier(organisation))
        invalid("organisationEntityIdentifier is missing or malformed");
      keys = await dynamic.keysFor(ctx, log, organisation, jws.header.kid);
      if (keys.length === 0) invalid("no live secret of the organisation matches the token");
    }
    if (verifiedBefore(jws, keys)) return this.acceptedClaims(jws, secretType, rules, jws.known!.key);
    const signature = decodeShortBase64Url(jws.signatureSegment);
    let signedWith: CryptoKey | undefined;
    for (let i = 0; i < keys.length && signedWith === undefined; i++)
      if (await crypto.subtle.verify("HMAC", keys[i]!.key, signature, jws.signingInput)) signedWith = keys[i]!.key;
    if (signedWith === undefined) invalid("signature verification failed");
    return this.acceptedClaims(jws, secretType, rules, signedWith);
  }

  private decodeJws(token: string): DecodedJws {
    const lastDot = token.lastIndexOf(".");
    const signingInputText = token.slice(0, lastDot);
    const signatureSegment = token.slice(lastDot + 1);
    const known = lastDot > 0 ? this.knownInputs.get(signingInputText) : undefined;
    if (known) {
      if (!SIGNATURE_SEGMENT.test(signatureSegment)) invalid("token is not a compact JWS");
      if (!isCanonicalBase64Url(signatureSegment)) invalid("token is not canonical base64url");
      return {
        header: known.header,
        payload: known.payload,
        signingInputText,
        signingInput: known.bytes,
        signatureSegment,
        known,
      };
    }
    if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) invalid("token is not a compact JWS");
    const firstDot = token.indexOf(".");
    const headerSegment = token.slice(0, firstDot);
    const payloadSegment = token.slice(firstDot + 1, lastDot);
    if (
      !isCanonicalBase64Url(headerSegment) ||
      !isCanonicalBase64Url(payloadSegment) ||
      !isCanonicalBase64Url(signatureSegment)
    ) {
      invalid("token is not canonical base64url");
    }
    return {
      header: parseHeader(headerSegment, this.headerCache),
      payload: parseJsonObject(payloadSegment, "payload"),
      signingInputText,
      signingInput: encoder.encode(signingInputText) as Uint8Array<ArrayBuffer>,
      signatureSegment,
      known: undefined,
    };
  }

  private acceptedClaims(jws: DecodedJws, secretType: SecretType, rules: ClaimRules, key: CryptoKey): AccessClaims {
    const known = jws.known;
    if (known?.issuer === rules.issuer && known.audience === rules.audience) {
      const claims = recheckClaimTimes(known.claims, rules);
      if (known.signature !== jws.signatureSegment || known.key !== key) {
        known.signature = jws.signatureSegment;
        known.key = key;
      }
      return claims;
    }
    const claims = Object.freeze(checkClaims(jws.payload, secretType, rules));
    this.knownInputs.set(jws.signingInputText, {
      header: jws.header,
      payload: Object.freeze(jws.payload),
      bytes: jws.signingInput,
      claims,
      issuer: rules.issuer,
      audience: rules.audience,
      signature: jws.signatureSegment,
      key,
    });
    return claims;
  }
}
