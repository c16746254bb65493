/** Verifies a stored password hash of any supported format and says whether it should be replaced. */
import type { Logger } from "../log";
import { isBcryptHash, verifyBcrypt } from "./bcrypt";
import { needsRehash, verifyPassword } from "./password";

/** The outcome of checking a password against a stored hash. */
export interface StoredHashCheck {
  /** The password matches. */
  ok: boolean;
  /** The password matched a hash in an old format or with old parameters: re-hash it now. */
  needsRehash: boolean;
}

/**
 * Checks `password` against `stored`: the gateway's own PBKDF2 format, or bcrypt imported from the
 * origin database. Anything else still costs one PBKDF2 derivation and never verifies.
 */
export async function verifyStoredPassword(
  password: string,
  stored: string,
  pepper: string,
  log: Logger,
): Promise<StoredHashCheck> {
  if (isBcryptHash(stored)) {
    const ok = await verifyBcrypt(password, stored, log);
    return { ok, needsRehash: ok };
  }
  const ok = await verifyPassword(password, stored, pepper);
  return { ok, needsRehash: ok && needsRehash(stored) };
}
