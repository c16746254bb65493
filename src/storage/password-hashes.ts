/** D1 write behind transparent password re-hashing. */
import { and, eq } from "drizzle-orm";
import type { Database } from "./db";
import { members } from "./schema";

/**
 * Replaces a member's password hash with a re-hash of the same password, only if the stored hash is
 * still `previous` (a real password change in between wins). `password_changed_at` stays as it is:
 * the password did not change, so sessions must not end. True when the row was updated.
 */
export async function replacePasswordHash(
  db: Database,
  memberId: number,
  previous: string,
  next: string,
): Promise<boolean> {
  const result = await db
    .update(members)
    .set({ passwordHash: next })
    .where(and(eq(members.id, memberId), eq(members.passwordHash, previous)));
  return result.meta.changes === 1;
}
