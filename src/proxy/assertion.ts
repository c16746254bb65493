/** `X-Gateway-Assertion`: a 60-second JWT (EdDSA, ES256 or HS256) binding the identity to the method and path. */
import type { Config } from "../config";
import type { AccessClaims } from "../tokens/claims";
import { signJws, type JwsSigner } from "../tokens/sign";

/** Lifetime of an assertion in seconds. */
export const ASSERTION_TTL = 60;
/** `typ` of an assertion, so it can never pass for an access token. */
const ASSERTION_TYPE = "gridgate-assertion+jwt";

interface AssertionClaims {
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

/** Signs one forwarded request's assertion at `now` (seconds); `path` is the path and query the origin receives. */
export function signAssertion(
  config: Pick<Config, "issuer">,
  signer: JwsSigner,
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
  return signJws(assertion, signer, ASSERTION_TYPE);
}
