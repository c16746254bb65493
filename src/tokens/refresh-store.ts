/** The refresh-token store in the TOKENS KV namespace: issue, load, rotate, revoke a family, revoke a member (in D1, with a KV copy). */
import type { ConfigSource } from "../config";
import { unavailable } from "../gateway-error";
import { revokedBy, type Instant } from "../revocation/order";
import type { Logger } from "../log";
import type { Database } from "../storage/db";
import { revokeMemberSessionsAt } from "../storage/members";
import type { FamilyFacts, RefreshFamily } from "./refresh-family";
import { generateRefreshToken, openSuccessor, refreshTokenHash, sealSuccessor } from "./refresh-token";

/** KV key prefixes of the refresh-token store (see README § Refresh tokens). */
export const REFRESH_KEYS = {
  /** One record per token, by the token's SHA-256; the token itself is never stored. */
  token: (hash: string) => `refresh:${hash}`,
  /** Present only once a family is revoked. */
  family: (familyId: string) => `refresh-family:${familyId}`,
  /** A member's "no session created before" time, set by revoke-all: KV's copy of `members.sessions_revoked_at`, for early refusals. */
  member: (memberId: number) => `refresh-member:${memberId}`,
} as const;

/** KV's smallest `expirationTtl`. */
const MIN_KV_TTL_SECONDS = 60;
/** Shortest edge-cache time KV allows; keeps revocations and rotations visible sooner. */
const READ_CACHE_TTL_SECONDS = 30;

/** What KV holds for one refresh token (times in milliseconds). */
export interface RefreshRecord {
  v: 1;
  familyId: string;
  /** Milliseconds; compared with revoke-all and password-change times. */
  familyCreatedAt: number;
  memberId: number;
  organisationId: number;
  issuedAt: number;
  expiresAt: number;
  /** Hash of the token this one replaced; absent on the first token of a family. */
  parent?: string | undefined;
  usedAt?: number | undefined;
  successor?: { hash: string; sealed: string; expiresAt: number } | undefined;
}

/** What KV holds once a family is revoked. */
interface FamilyRevocation {
  revokedAt: number;
  memberId: number;
  reason: string;
}

/** What KV holds for a member's revoke-all. */
interface MemberNotBefore {
  notBefore: number;
}

/** A parsed KV value's fields, read one by one; a guard returns undefined for any value of the wrong shape. */
type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  value !== null && typeof value === "object" && !Array.isArray(value);
const isNumber = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value);
const isInteger = (value: unknown): value is number => Number.isSafeInteger(value);
const isString = (value: unknown): value is string => typeof value === "string";

/** The record with exactly its known fields (as written by this store), or undefined. */
function parseRefreshRecord(raw: unknown): RefreshRecord | undefined {
  if (!isObject(raw)) return undefined;
  const { v, familyId, familyCreatedAt, memberId, organisationId, issuedAt, expiresAt, parent, usedAt, successor } =
    raw;
  if (v !== 1 || !isString(familyId) || !isNumber(familyCreatedAt)) return undefined;
  if (!isInteger(memberId) || !isInteger(organisationId) || !isNumber(issuedAt) || !isNumber(expiresAt))
    return undefined;
  if ((parent !== undefined && !isString(parent)) || (usedAt !== undefined && !isNumber(usedAt))) return undefined;
  const record: RefreshRecord = { v, familyId, familyCreatedAt, memberId, organisationId, issuedAt, expiresAt };
  if (parent !== undefined) record.parent = parent;
  if (usedAt !== undefined) record.usedAt = usedAt;
  if (successor !== undefined) {
    if (!isObject(successor)) return undefined;
    const { hash, sealed, expiresAt: successorExpiresAt } = successor;
    if (!isString(hash) || !isString(sealed) || !isNumber(successorExpiresAt)) return undefined;
    record.successor = { hash, sealed, expiresAt: successorExpiresAt };
  }
  return record;
}

function parseFamilyRevocation(raw: unknown): FamilyRevocation | undefined {
  if (!isObject(raw)) return undefined;
  const { revokedAt, memberId, reason } = raw;
  return isNumber(revokedAt) && isNumber(memberId) && isString(reason) ? { revokedAt, memberId, reason } : undefined;
}

function parseMemberNotBefore(raw: unknown): MemberNotBefore | undefined {
  if (!isObject(raw)) return undefined;
  const { notBefore } = raw;
  return isNumber(notBefore) ? { notBefore } : undefined;
}

/** Whose session a refresh token continues. */
export interface SessionOwner {
  memberId: number;
  organisationId: number;
}

/** A refresh token as handed to a client. */
export interface RefreshTokenGrant {
  token: string;
  hash: string;
  /** Seconds until it expires. */
  expiresIn: number;
}

/** A newly written refresh token and its stored record. */
export interface IssuedRefreshToken extends RefreshTokenGrant {
  record: RefreshRecord;
}

/** A successor written to KV and sealed under the token it would replace, not yet issued. */
export interface PreparedSuccessor {
  next: IssuedRefreshToken;
  sealed: string;
}

/** A presented token's record with the state around it, read in one round of parallel KV reads. */
export interface StoredSession {
  hash: string;
  record: RefreshRecord;
  /** Why the whole family no longer works, as far as KV knows (the family's object has the last word). */
  revoked: "family_revoked" | "member_signed_out" | undefined;
}

/** One exchange to decide: the presented token, its session, and what the caller prepared and knows. */
export interface SessionExchange {
  presented: string;
  session: StoredSession;
  /** The successor to issue; undefined when D1 says the session ends (`end`). */
  prepared: PreparedSuccessor | undefined;
  /** `REFRESH_GRACE_SECONDS` in ms. */
  graceMs: number;
  /** Why D1 says the session ends, if it does. */
  end: string | undefined;
  now?: number;
}

/** What the family's object decided for one exchange, with the successor the client gets. */
export type ExchangeResult =
  | { outcome: "rotated"; refresh: RefreshTokenGrant }
  | { outcome: "graced"; refresh: RefreshTokenGrant }
  | { outcome: "reused" }
  | { outcome: "unknown" }
  | { outcome: "revoked"; reason: string }
  | { outcome: "ended"; reason: string };

function kvTtl(expiresAt: number, now: number): number {
  return Math.max(MIN_KV_TTL_SECONDS, Math.ceil((expiresAt - now) / 1000));
}

function familyFacts(record: RefreshRecord): FamilyFacts {
  const { familyId, familyCreatedAt, memberId, organisationId } = record;
  return { familyId, familyCreatedAt, memberId, organisationId };
}

/** What a {@link RefreshStore} reads and writes. */
export interface RefreshStoreDeps {
  kv: KVNamespace;
  families: DurableObjectNamespace<RefreshFamily>;
  source: ConfigSource;
  now: () => number;
  db: Database;
}

/**
 * Refresh records (KV: the lookup from a token's hash to its family), family revocations and member
 * sign-outs. Whether a token may rotate is decided by its family's `RefreshFamily` object only;
 * KV's copies of `usedAt` and family markers are for reading and early refusals (times in ms).
 */
export class RefreshStore {
  constructor(private readonly deps: RefreshStoreDeps) {}

  /** Starts a new session (token family) for `owner` at `now` (the issue instant), valid `REFRESH_TOKEN_TTL` seconds. */
  issue(owner: SessionOwner, now = this.deps.now()): Promise<IssuedRefreshToken> {
    return this.writeToken({ familyId: crypto.randomUUID(), familyCreatedAt: now, ...owner }, now);
  }

  /** The stored record of a (format-checked) token, or undefined when unknown or expired from KV. */
  async find(log: Logger, token: string): Promise<RefreshRecord | undefined> {
    return this.readJson(log, REFRESH_KEYS.token(await refreshTokenHash(token)), parseRefreshRecord);
  }

  /** Reads a (format-checked) token's record and what KV knows of its revocation; undefined when unknown. */
  async load(log: Logger, token: string): Promise<StoredSession | undefined> {
    const hash = await refreshTokenHash(token);
    const record = await this.readJson(log, REFRESH_KEYS.token(hash), parseRefreshRecord);
    if (!record) return undefined;
    const [family, member] = await Promise.all([
      this.readJson(log, REFRESH_KEYS.family(record.familyId), parseFamilyRevocation),
      this.readJson(log, REFRESH_KEYS.member(record.memberId), parseMemberNotBefore),
    ]);
    const signedOut = revokedBy(record.familyCreatedAt, member?.notBefore);
    return { hash, record, revoked: family ? "family_revoked" : signedOut ? "member_signed_out" : undefined };
  }

  /**
   * Writes the KV record of a would-be successor of `presented` and seals it under `presented`:
   * written before the family's object decides, so a client never holds a token KV cannot find.
   * When the object hands out another successor instead, this record is never given to anyone.
   */
  async prepareSuccessor(presented: string, session: StoredSession, now = this.deps.now()): Promise<PreparedSuccessor> {
    const { hash, record } = session;
    const next = await this.writeToken({ ...familyFacts(record), parent: hash }, now);
    return { next, sealed: await sealSuccessor(presented, hash, next.token) };
  }

  /**
   * Asks the family's object to decide: rotate to `prepared`, hand out the successor already issued
   * within the grace window, or revoke the family (reuse; or `end` when D1 says the session is over,
   * in which case nothing is prepared). Once the object decided, KV's copies of the decision are
   * best effort (logged when they fail): the decision stands, and the client gets its answer.
   */
  async exchange(log: Logger, exchange: SessionExchange): Promise<ExchangeResult> {
    const { presented, session, prepared, graceMs, end, now = this.deps.now() } = exchange;
    const { hash, record } = session;
    const next = prepared?.next;
    const sealed = prepared?.sealed ?? "";
    const candidate = next
      ? { hash: next.hash, sealed, expiresAt: next.record.expiresAt, issuedAt: now }
      : { hash: "", sealed: "", expiresAt: 0, issuedAt: now };
    const decision = await this.family(record.familyId).exchange({
      family: familyFacts(record),
      presented: {
        hash,
        issuedAt: record.issuedAt,
        expiresAt: record.expiresAt,
        parent: record.parent,
        usedAt: record.usedAt,
        successor: record.successor,
      },
      candidate,
      graceMs,
      now,
      end,
    });
    if (next && decision.outcome !== "rotated") await this.discard(log, next.hash);
    switch (decision.outcome) {
      case "rotated": {
        if (!next) throw new Error("the family object rotated without a prepared successor");
        // KV's copy of the use, for readers; the object already holds the decision.
        const used: RefreshRecord = {
          ...record,
          usedAt: now,
          successor: { hash: next.hash, sealed, expiresAt: next.record.expiresAt },
        };
        await this.deps.kv
          .put(REFRESH_KEYS.token(hash), JSON.stringify(used), { expirationTtl: kvTtl(record.expiresAt, now) })
          .catch((error: unknown) => log.error("refresh_copy_failed", { copy: "used", error: String(error) }));
        return { outcome: "rotated", refresh: { token: next.token, hash: next.hash, expiresIn: next.expiresIn } };
      }
      case "graced": {
        const token = await openSuccessor(presented, hash, decision.successor.sealed);
        if (!token) return { outcome: "unknown" };
        const expiresIn = Math.max(1, Math.floor((decision.successor.expiresAt - now) / 1000));
        return { outcome: "graced", refresh: { token, hash: decision.successor.hash, expiresIn } };
      }
      case "reused":
        await this.publishRevocation(log, record, "reused", now);
        return decision;
      case "ended":
        await this.publishRevocation(log, record, decision.reason, now);
        return decision;
      default:
        return decision;
    }
  }

  /**
   * Ends a whole family (every token ever rotated from one login) through its object; writes KV only the first
   * time. Throws (503) when the object cannot be reached: the family is then not revoked and the caller must say so.
   */
  async revokeFamily(log: Logger, record: RefreshRecord, reason: string, now = this.deps.now()): Promise<void> {
    const { revoked } = await this.family(record.familyId).revoke(familyFacts(record), reason, now, record.expiresAt);
    if (revoked) await this.publishRevocation(log, record, reason, now);
  }

  /**
   * Publishes a family's revocation to KV, so every location refuses its tokens before asking the object.
   * Best effort: the object already revoked the family and refuses its tokens whether KV says so or not.
   */
  private async publishRevocation(log: Logger, record: RefreshRecord, reason: string, now: number): Promise<void> {
    const value = { revokedAt: now, memberId: record.memberId, reason } satisfies FamilyRevocation;
    try {
      await this.deps.kv.put(REFRESH_KEYS.family(record.familyId), JSON.stringify(value), {
        expirationTtl: this.deps.source.config.refreshTokenTtl + MIN_KV_TTL_SECONDS,
      });
    } catch (error) {
      log.error("refresh_copy_failed", { copy: "family_revoked", error: String(error) });
    }
  }

  /**
   * Deletes a prepared successor the family's object did not take (a concurrent duplicate got the successor
   * already issued, or the family ended): no one holds its token, so this only keeps KV tidy; best effort.
   */
  private async discard(log: Logger, hash: string): Promise<void> {
    await this.deps.kv
      .delete(REFRESH_KEYS.token(hash))
      .catch((error: unknown) => log.error("refresh_copy_failed", { copy: "discarded", error: String(error) }));
  }

  private family(familyId: string): DurableObjectStub<RefreshFamily> {
    return this.deps.families.get(this.deps.families.idFromName(familyId));
  }

  /**
   * Ends every session a member started at or before `at`: the decision is `members.sessions_revoked_at` in D1,
   * which every refresh reads (exact at once, everywhere); the KV marker after it only lets a location
   * refuse early. One key per member; KV allows one write per key per second, so a refused write is
   * retried once a second later. `db`: where to write (default the primary; a session when the caller needs its bookmark).
   */
  async revokeMemberSessions(memberId: number, at: Instant, db: Database = this.deps.db): Promise<void> {
    await revokeMemberSessionsAt(db, memberId, at);
    const put = () =>
      this.deps.kv.put(REFRESH_KEYS.member(memberId), JSON.stringify({ notBefore: at }), {
        expirationTtl: this.deps.source.config.refreshTokenTtl + MIN_KV_TTL_SECONDS,
      });
    try {
      await put();
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await put();
    }
  }

  private async readJson<T>(log: Logger, key: string, parse: (raw: unknown) => T | undefined): Promise<T | undefined> {
    const raw = await this.deps.kv.get(key, { type: "json", cacheTtl: READ_CACHE_TTL_SECONDS });
    if (raw === null) return undefined;
    const parsed = parse(raw);
    if (parsed !== undefined) return parsed;
    // An unreadable value is a storage failure, not an unknown token: 503, never a 401 that ends the session.
    log.error("refresh_store_unreadable", { key: key.split(":")[0] });
    throw unavailable("kv", "unreadable refresh-store value");
  }

  private async writeToken(
    fields: Omit<RefreshRecord, "v" | "issuedAt" | "expiresAt">,
    now: number,
  ): Promise<IssuedRefreshToken> {
    const { refreshTokenTtl } = this.deps.source.config;
    const token = generateRefreshToken();
    const hash = await refreshTokenHash(token);
    const record: RefreshRecord = { v: 1, ...fields, issuedAt: now, expiresAt: now + refreshTokenTtl * 1000 };
    await this.deps.kv.put(REFRESH_KEYS.token(hash), JSON.stringify(record), {
      expirationTtl: kvTtl(record.expiresAt, now),
    });
    return { token, hash, record, expiresIn: refreshTokenTtl };
  }
}
