// The seeded member every bench request acts for, and the X-Gateway-Assertion claims made for it: one source for
// the Node side (bench/lib/fixtures.mjs) and the contract-floor Worker (bench/workers/floor.ts).

/** The identity of the seeded architect (scripts/seed-data.ts) as the gateway puts it in tokens and headers. */
export const MEMBER = {
  memberEntityId: 2549,
  memberEntityIdentifier: "o6q2is",
  organisationEntityIdentifier: "m7l9hw",
  scope: "architect",
} as const;

/** The `X-Gateway-Assertion` claims of one request of {@link MEMBER}, valid for 60 s from `now` (seconds). */
export function assertionClaims(method: string, path: string, requestId: string, tokenId: string, now: number) {
  return {
    iss: "gridgate",
    aud: "origin",
    jti: requestId,
    iat: now,
    exp: now + 60,
    method,
    path,
    ...MEMBER,
    secretType: "fixed",
    tokenId,
  };
}
