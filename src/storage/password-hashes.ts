/** D1 write behind transparent password re-hashing. */
import { and, eq } from "drizzle-orm";
import type { Database } from "./db";
import { members } from "./schema";

/** Stores a re-hash only if the hash is still `previous`, leaving `password_changed_at` alone; true when updated. */
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
