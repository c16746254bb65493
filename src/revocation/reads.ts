/** Reads of member rows from D1 read replicas that still see every revocation in force (read-your-writes by bookmark). */
import type { Logger } from "../log";
import type { D1Access, Database } from "../storage/db";
import type { RevocationList } from "./list";

/** What {@link MemberReads} works with; all owned by the gateway. */
export interface MemberReadsDeps {
  d1: D1Access;
  revocations: RevocationList;
}

/**
 * Logins and refreshes read member rows (password hash, status, `sessions_revoked_at`) from a replica, and must
 * still see a revocation that answered before them (src/revocation/order.ts). Every revocation of a member is
 * recorded in its `Revocations` shard with the D1 bookmark of its writes; a read whose session is older than the
 * latest such bookmark of the members it read is repeated from a replica at least that fresh. When the shard
 * cannot be asked, the read is repeated on the primary instead: never a failed login because of it.
 */
export class MemberReads {
  constructor(private readonly deps: MemberReadsDeps) {}

  /**
   * `read` run on a replica, then again where needed as above. `membersOf` names the members of what was read;
   * `known`, when the caller already knows them, lets the shards be asked while the first read runs.
   */
  async read<Rows>(
    log: Logger,
    read: (db: Database) => Promise<Rows>,
    membersOf: (rows: Rows) => readonly number[],
    known?: readonly number[],
  ): Promise<Rows> {
    const { d1, revocations } = this.deps;
    const session = d1.session("first-unconstrained");
    const early = known === undefined ? undefined : revocations.bookmarkFor({ members: known });
    early?.catch(() => undefined); // awaited below; a first read that fails must not leave it unhandled
    const rows = await read(session.db);
    let required: string | undefined;
    try {
      required = await (early ?? revocations.bookmarkFor({ members: membersOf(rows) }));
    } catch (error) {
      log.warn("revocation_bookmark_failed", { error: String(error), read_from: "primary" });
      return read(d1.primary);
    }
    if (required === undefined) return rows;
    const seen = session.bookmark();
    if (seen !== null && seen >= required) return rows;
    return read(d1.session(required).db);
  }
}
