/** The one ordering rule of revocations and issues, in milliseconds on one timeline (docs/security.md § Revocation). */
import { v7 as uuidv7 } from "uuid";

/** An instant: milliseconds since the epoch. */
export type Instant = number;

/** The claims of a token that say when it was issued: `iat` (seconds) and, for the gateway's own, a UUIDv7 `jti`. */
export interface IssuedToken {
  iat?: number;
  jti?: string;
}

/** The rule: a revocation at `revokedAt` (none when null or undefined) refuses whatever was issued at or before it. */
export function revokedBy(issuedAt: Instant, revokedAt: Instant | null | undefined): boolean {
  return revokedAt !== null && revokedAt !== undefined && issuedAt <= revokedAt;
}

/** The instant to issue or revoke at: the clock, but after every earlier revocation of the subject, whatever the clocks. */
export function issueInstant(now: Instant, ...revokedAt: (Instant | null | undefined)[]): Instant {
  let instant = now;
  for (const at of revokedAt) if (at !== null && at !== undefined && at >= instant) instant = at + 1;
  return instant;
}

/** A token id that carries its issue instant: an RFC 9562 UUIDv7 (48-bit millisecond timestamp, 74 random bits). */
export function tokenIdAt(instant: Instant): string {
  return uuidv7({ msecs: instant });
}

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** When a token was issued: its UUIDv7 `jti`'s millisecond when within its `iat` second, else the start of that second. */
export function issuedAtOf({ iat, jti }: IssuedToken): Instant {
  if (iat === undefined) return Number.NEGATIVE_INFINITY;
  const second = iat * 1000;
  if (jti === undefined || !UUID_V7.test(jti)) return second;
  const instant = parseInt(jti.slice(0, 8), 16) * 65536 + parseInt(jti.slice(9, 13), 16);
  return instant >= second && instant < second + 1000 ? instant : second;
}
