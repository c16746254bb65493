/** Issuing the gateway's own fixed-secret access tokens. */
import type { Config } from "../config";
import { tokenIdAt, type Instant } from "../revocation/order";
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

/** Signs a fixed-secret access token issued at `instant` (ms, carried by `jti`), valid `ACCESS_TOKEN_TTL` seconds. */
export async function issueAccessToken(
  config: Config,
  ring: FixedKeyRing,
  subject: TokenSubject,
  instant: Instant,
): Promise<IssuedAccessToken> {
  const iat = Math.floor(instant / 1000);
  const claims = {
    iat,
    iss: config.issuer,
    jti: tokenIdAt(instant),
    exp: iat + config.accessTokenTtl,
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
