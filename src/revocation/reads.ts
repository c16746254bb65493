/** Reads of member rows from D1 read replicas that still see every revocation and change in force (read-your-writes by bookmark). */
import type { Logger } from "../log";
import type { D1Access, Database } from "../storage/db";
import type { RevocationList, WrittenSubjects } from "./list";

/** What {@link MemberReads} works with; all owned by the gateway. */
export interface MemberReadsDeps {
  d1: D1Access;
  revocations: RevocationList;
}

/**
 * Member reads from a replica that still see every revocation or change that answered before them: a replica older
 * than the subjects' latest bookmark is read again from a fresh enough one, or the primary when a shard cannot answer.
 */
export class MemberReads {
  constructor(private readonly deps: MemberReadsDeps) {}

  /** `read` run on a replica, then again where needed as above; `subjectsOf` names whose rows it read (or looked for). */
  async read<Rows>(
    log: Logger,
    read: (db: Database) => Promise<Rows>,
    subjectsOf: (rows: Rows) => WrittenSubjects,
  ): Promise<Rows> {
    const { d1, revocations } = this.deps;
    const session = d1.session("first-unconstrained");
    const rows = await read(session.db);
    let required: string | undefined;
    try {
      required = await revocations.bookmarkFor(subjectsOf(rows));
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
