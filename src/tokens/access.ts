/** Issuing the gateway's own fixed-secret access tokens. */
import type { Config } from "../config";
import type { AccessClaims } from "./claims";
import type { FixedKeyRing } from "./keys";
import { signJwt } from "./sign";

/** Who an access token is for. */
export interface TokenSubject {
  memberEntityId: number;
  memberEntityIdentifier: string;
  organisationEntityIdentifier: string;
  scope: string;
}

/** A signed access token and what a token response says about it. */
export interface IssuedAccessToken {
  token: string;
  claims: AccessClaims;
  expiresIn: number;
}

/** Signs a fixed-secret access token with `ring.current`, valid `ACCESS_TOKEN_TTL` seconds from `now` (seconds). */
export async function issueAccessToken(
  config: Config,
  ring: FixedKeyRing,
  subject: TokenSubject,
  now: number,
): Promise<IssuedAccessToken> {
  const claims = {
    iat: now,
    iss: config.issuer,
    jti: crypto.randomUUID(),
    exp: now + config.accessTokenTtl,
    memberEntityId: subject.memberEntityId,
    memberEntityIdentifier: subject.memberEntityIdentifier,
    organisationEntityIdentifier: subject.organisationEntityIdentifier,
    scope: subject.scope,
    secretType: "fixed",
  } satisfies AccessClaims;
  // The payload spells memberEntityId as the API documentation does: a string of decimal digits.
  const payload = { ...claims, memberEntityId: String(claims.memberEntityId) };
  const token = await signJwt(payload, ring.current.key, { kid: ring.current.kid });
  return { token, claims, expiresIn: config.accessTokenTtl };
}
