/** `X-Gateway-Assertion`: a 60-second HS256 JWT binding the identity to the method and path. */
import type { Config } from "../config";
import type { AccessClaims } from "../tokens/claims";
import { encodeBase64Url } from "../tokens/base64url";
import { signJwt } from "../tokens/sign";

/** Lifetime of an assertion in seconds. */
export const ASSERTION_TTL = 60;
/** `typ` of an assertion, so it can never pass for an access token. */
export const ASSERTION_TYPE = "gridgate-assertion+jwt";

/** Claims of an `X-Gateway-Assertion`, as documented for origin integrators. */
export interface AssertionClaims {
  iss: string;
  aud: "origin";
  jti: string;
  iat: number;
  exp: number;
  method: string;
  path: string;
  memberEntityId?: number;
  memberEntityIdentifier: string;
  organisationEntityIdentifier: string;
  scope: string;
  secretType: string;
  tokenId?: string;
}

/** The claims' constant part of an assertion's JSON, by issuer; kept as long as the verified claims object is. */
interface ConstantParts {
  issuer: string;
  /** `{"iss":…,"aud":"origin","jti":` */
  head: string;
  /** `,"memberEntityId":…,"tokenId":…}` */
  tail: string;
}

/**
 * Per verified claims object (the verifier hands out the same frozen object for every request of a
 * token): the assertion JSON's parts that do not change per request. A WeakMap holds nothing the
 * verifier's bounded cache does not already keep alive, and only verified claims reach it.
 */
const constantParts = new WeakMap<AccessClaims, ConstantParts>();
const encoder = new TextEncoder();
const HEADER_SEGMENT = encodeBase64Url(JSON.stringify({ alg: "HS256", typ: ASSERTION_TYPE }));

function partsOf(issuer: string, claims: AccessClaims): ConstantParts {
  let parts = constantParts.get(claims);
  if (parts?.issuer !== issuer) {
    const head = JSON.stringify({ iss: issuer, aud: "origin" });
    const tail = JSON.stringify({
      memberEntityId: claims.memberEntityId,
      memberEntityIdentifier: claims.memberEntityIdentifier,
      organisationEntityIdentifier: claims.organisationEntityIdentifier,
      scope: claims.scope,
      secretType: claims.secretType,
      tokenId: claims.jti,
    });
    parts = { issuer, head: `${head.slice(0, -1)},"jti":`, tail: `,${tail.slice(1)}` };
    constantParts.set(claims, parts);
  }
  return parts;
}

/**
 * Signs the assertion for one forwarded request with `key` (`ASSERTION_SECRET`) at `now` (seconds);
 * `path` is the path and query the origin receives. The JSON is byte for byte what
 * `JSON.stringify` of {@link AssertionClaims} in field order gives (test/assertion.test.ts); only the
 * per-request fields are serialised on each call.
 */
export async function signAssertion(
  config: Pick<Config, "issuer">,
  key: CryptoKey,
  claims: AccessClaims,
  request: { method: string; path: string; requestId: string },
  now: number,
): Promise<string> {
  const { head, tail } = partsOf(config.issuer, claims);
  const json =
    `${head}${JSON.stringify(request.requestId)},"iat":${now},"exp":${now + ASSERTION_TTL}` +
    `,"method":${JSON.stringify(request.method)},"path":${JSON.stringify(request.path)}${tail}`;
  const signingInput = `${HEADER_SEGMENT}.${encodeBase64Url(json)}`;
  const signature = await crypto.subtle.sign("HMAC", key, encoder.encode(signingInput));
  return `${signingInput}.${encodeBase64Url(signature)}`;
}

/** The assertion as the generic signer writes it; the reference {@link signAssertion} must equal. */
export function signAssertionReference(
  config: Pick<Config, "issuer">,
  key: CryptoKey,
  claims: AccessClaims,
  request: { method: string; path: string; requestId: string },
  now: number,
): Promise<string> {
  const assertion: AssertionClaims = {
    iss: config.issuer,
    aud: "origin",
    jti: request.requestId,
    iat: now,
    exp: now + ASSERTION_TTL,
    method: request.method,
    path: request.path,
    memberEntityId: claims.memberEntityId,
    memberEntityIdentifier: claims.memberEntityIdentifier,
    organisationEntityIdentifier: claims.organisationEntityIdentifier,
    scope: claims.scope,
    secretType: claims.secretType,
    tokenId: claims.jti,
  };
  return signJwt(assertion, key, { typ: ASSERTION_TYPE });
}
