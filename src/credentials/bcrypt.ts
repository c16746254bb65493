/** Verification of bcrypt hashes imported from the origin database ($2a$, $2b$, $2y$). */
import { compare } from "bcryptjs";
import type { Logger } from "../log";

const BCRYPT_MAX_PASSWORD_BYTES = 72;
/** Highest bcrypt cost verified; each step doubles a login's CPU time (docs/security.md § Login protection). */
export const BCRYPT_MAX_COST = 12;

const FORMAT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
const encoder = new TextEncoder();

/** The cost of a well-formed bcrypt hash the gateway can verify (4–{@link BCRYPT_MAX_COST}), else undefined. */
export function usableBcryptCost(stored: string): number | undefined {
  const match = FORMAT.exec(stored);
  const cost = match ? Number(match[1]) : 0;
  return cost >= 4 && cost <= BCRYPT_MAX_COST ? cost : undefined;
}

/** True when a stored hash is in bcrypt's modular crypt format (whether or not it is well-formed). */
export function isBcryptHash(stored: string): boolean {
  return /^\$2[aby]\$/.test(stored);
}

/** Checks `password` against an imported bcrypt hash; one over 72 bytes never verifies (docs/security.md). */
export async function verifyBcrypt(password: string, stored: string, log: Logger): Promise<boolean> {
  if (usableBcryptCost(stored) === undefined) {
    log.warn("bcrypt_hash_unusable", { cost: Number(stored.slice(4, 6)) || 0 });
    return false;
  }
  const fits = encoder.encode(password).byteLength <= BCRYPT_MAX_PASSWORD_BYTES;
  const equal = await compare(password, stored);
  return fits && equal;
}
