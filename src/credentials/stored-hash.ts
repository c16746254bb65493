/** Verifies a stored password hash of any supported format and says whether it should be replaced. */
import type { Logger } from "../log";
import { isBcryptHash, verifyBcrypt } from "./bcrypt";
import { needsRehash, verifyPassword } from "./password";

/** The outcome of checking a password; `needsRehash` when it matched a hash in an old format or parameters. */
export interface StoredHashCheck {
  ok: boolean;
  needsRehash: boolean;
}

/** Checks `password` against a PBKDF2 or imported bcrypt hash; anything else costs a derivation and fails. */
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
