/** The `RefreshFamily` Durable Object: the one authority on rotating, re-issuing and revoking one refresh family. */
import { DurableObject } from "cloudflare:workers";
import { ObjectTables } from "../storage/object-tables";

/** What the object needs to know of a family it has not seen yet; `familyCreatedAt` in ms. */
export interface FamilyFacts {
  familyId: string;
  familyCreatedAt: number;
  memberId: number;
  organisationId: number;
}

interface SealedSuccessor {
  hash: string;
  sealed: string;
  expiresAt: number;
}

/** The presented token as KV describes it; used only when the object adopts a family it has never seen. */
export interface PresentedToken {
  hash: string;
  issuedAt: number;
  expiresAt: number;
  parent?: string | undefined;
  usedAt?: number | undefined;
  successor?: SealedSuccessor | undefined;
}

/** One exchange: the presented token, the caller's prepared successor, `end` when D1 ends the session; times in ms. */
export interface ExchangeRequest {
  family: FamilyFacts;
  presented: PresentedToken;
  candidate: SealedSuccessor & { issuedAt: number };
  graceMs: number;
  now: number;
  end?: string | undefined;
}

/** The object's decision. */
export type ExchangeDecision =
  | { outcome: "rotated" }
  | { outcome: "graced"; successor: SealedSuccessor }
  | { outcome: "revoked"; reason: string }
  | { outcome: "reused" }
  | { outcome: "ended"; reason: string }
  | { outcome: "unknown" };

/** The answer of {@link RefreshFamily.revoke}: `revoked` is false when the family already was. */
export interface RevokeDecision {
  revoked: boolean;
}

/** What a test or an operator may read back. */
export interface FamilyState {
  revokedAt: number | null;
  reason: string | null;
  tokens: { hash: string; parent: string | null; usedAt: number | null; successorHash: string | null }[];
}

type FamilyRow = { family_id: string; revoked_at: number | null; reason: string | null; expires_at: number };
type TokenRow = {
  hash: string;
  issued_at: number;
  expires_at: number;
  parent: string | null;
  used_at: number | null;
  successor_hash: string | null;
  successor_sealed: string | null;
  successor_expires_at: number | null;
};

const FORGET_AFTER_MS = 60_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS family (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  family_id TEXT NOT NULL,
  member_id INTEGER NOT NULL,
  organisation_id INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER,
  reason TEXT
);
CREATE TABLE IF NOT EXISTS tokens (
  hash TEXT PRIMARY KEY,
  issued_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  parent TEXT,
  used_at INTEGER,
  successor_hash TEXT,
  successor_sealed TEXT,
  successor_expires_at INTEGER
);`;

/** One object per refresh family, named by `familyId`; each decision is one SQLite transaction (docs/security.md). */
export class RefreshFamily extends DurableObject {
  private readonly tables: ObjectTables;

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    this.tables = new ObjectTables(ctx.storage, SCHEMA);
  }

  async exchange(request: ExchangeRequest): Promise<ExchangeDecision> {
    const { presented, candidate, graceMs, now, end } = request;
    const decision = this.ctx.storage.transactionSync((): ExchangeDecision => {
      const family = this.family() ?? this.adopt(request.family, presented);
      if (family.revoked_at !== null) return { outcome: "revoked", reason: family.reason ?? "revoked" };
      const token = this.token(presented.hash);
      if (!token) return { outcome: "unknown" };
      if (token.used_at !== null) {
        if (now - token.used_at > graceMs || !token.successor_hash || !token.successor_sealed) {
          this.markRevoked(now, "reused");
          return { outcome: "reused" };
        }
      }
      if (end) {
        this.markRevoked(now, end);
        return { outcome: "ended", reason: end };
      }
      if (token.used_at !== null) {
        return {
          outcome: "graced",
          successor: {
            hash: token.successor_hash!,
            sealed: token.successor_sealed!,
            expiresAt: token.successor_expires_at ?? candidate.expiresAt,
          },
        };
      }
      this.sql(
        "UPDATE tokens SET used_at = ?, successor_hash = ?, successor_sealed = ?, successor_expires_at = ? WHERE hash = ?",
        now,
        candidate.hash,
        candidate.sealed,
        candidate.expiresAt,
        presented.hash,
      );
      this.insertToken(candidate.hash, candidate.issuedAt, candidate.expiresAt, presented.hash);
      return { outcome: "rotated" };
    });
    await this.scheduleForget();
    return decision;
  }

  /** Ends the family for good (logout, reuse, session end); idempotent. */
  async revoke(facts: FamilyFacts, reason: string, now: number, expiresAt: number): Promise<RevokeDecision> {
    const revoked = this.ctx.storage.transactionSync(() => {
      const family =
        this.family() ??
        this.adopt(facts, { hash: "", issuedAt: facts.familyCreatedAt, expiresAt }, { withToken: false });
      if (family.revoked_at !== null) return false;
      this.markRevoked(now, reason);
      return true;
    });
    await this.scheduleForget();
    return { revoked };
  }

  async state(): Promise<FamilyState | undefined> {
    const family = this.family();
    if (!family) return undefined;
    const tokens = this.sql<TokenRow>("SELECT * FROM tokens ORDER BY rowid").map((row) => ({
      hash: row.hash,
      parent: row.parent,
      usedAt: row.used_at,
      successorHash: row.successor_hash,
    }));
    return { revokedAt: family.revoked_at, reason: family.reason, tokens };
  }

  /** Forgets the family once its last token expired. */
  override async alarm(): Promise<void> {
    const family = this.family();
    if (family && family.expires_at + FORGET_AFTER_MS > Date.now()) {
      await this.ctx.storage.setAlarm(family.expires_at + FORGET_AFTER_MS);
      return;
    }
    await this.tables.deleteAll();
  }

  private adopt(facts: FamilyFacts, presented: PresentedToken, options = { withToken: true }): FamilyRow {
    this.sql(
      "INSERT INTO family (id, family_id, member_id, organisation_id, created_at, expires_at) VALUES (1, ?, ?, ?, ?, ?)",
      facts.familyId,
      facts.memberId,
      facts.organisationId,
      facts.familyCreatedAt,
      presented.expiresAt,
    );
    if (options.withToken) {
      this.insertToken(presented.hash, presented.issuedAt, presented.expiresAt, presented.parent ?? null);
      if (presented.usedAt !== undefined && presented.successor) {
        const { successor } = presented;
        this.sql(
          "UPDATE tokens SET used_at = ?, successor_hash = ?, successor_sealed = ?, successor_expires_at = ? WHERE hash = ?",
          presented.usedAt,
          successor.hash,
          successor.sealed,
          successor.expiresAt,
          presented.hash,
        );
        this.insertToken(successor.hash, presented.usedAt, successor.expiresAt, presented.hash);
      }
    }
    return this.family()!;
  }

  private insertToken(hash: string, issuedAt: number, expiresAt: number, parent: string | null): void {
    this.sql(
      "INSERT OR IGNORE INTO tokens (hash, issued_at, expires_at, parent) VALUES (?, ?, ?, ?)",
      hash,
      issuedAt,
      expiresAt,
      parent,
    );
    this.sql("UPDATE family SET expires_at = max(expires_at, ?) WHERE id = 1", expiresAt);
  }

  private markRevoked(now: number, reason: string): void {
    this.sql("UPDATE family SET revoked_at = ?, reason = ? WHERE id = 1", now, reason);
  }

  private family(): FamilyRow | undefined {
    return this.sql<FamilyRow>("SELECT family_id, revoked_at, reason, expires_at FROM family WHERE id = 1")[0];
  }

  private token(hash: string): TokenRow | undefined {
    return this.sql<TokenRow>("SELECT * FROM tokens WHERE hash = ?", hash)[0];
  }

  private async scheduleForget(): Promise<void> {
    const family = this.family();
    if (family && (await this.ctx.storage.getAlarm()) === null) {
      await this.ctx.storage.setAlarm(family.expires_at + FORGET_AFTER_MS);
    }
  }

  private sql<Row extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]): Row[] {
    return this.tables.query<Row>(query, ...bindings);
  }
}
