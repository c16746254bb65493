/** The refresh-token store in the TOKENS KV namespace: issue, load, rotate, revoke a family, revoke a member. */
import type { ConfigSource } from "../config";
import type { Logger } from "../log";
import { generateRefreshToken, openSuccessor, refreshTokenHash, sealSuccessor } from "./refresh-token";

/** KV key prefixes of the refresh-token store (see README § Refresh tokens). */
export const REFRESH_KEYS = {
  /** One record per token, by the token's SHA-256; the token itself is never stored. */
  token: (hash: string) => `refresh:${hash}`,
  /** Present only once a family is revoked. */
  family: (familyId: string) => `refresh-family:${familyId}`,
  /** A member's "no session created before" time, set by revoke-all. */
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

/** A presented token's record with the state around it, read in one round of parallel KV reads. */
export interface StoredSession {
  hash: string;
  record: RefreshRecord;
  /** Why the whole family no longer works, if it does not. */
  revoked: "family_revoked" | "member_signed_out" | undefined;
  /** The record of the token this one replaced, when it still exists. */
  parent: RefreshRecord | undefined;
}

function kvTtl(expiresAt: number, now: number): number {
  return Math.max(MIN_KV_TTL_SECONDS, Math.ceil((expiresAt - now) / 1000));
}

/**
 * True when this token's parent names a different successor and the two rotations were further
 * apart than the grace window: the parent was rotated twice (a replay that KV's eventual
 * consistency let through somewhere), so the family has forked.
 */
export function isForked(session: StoredSession, graceMs: number): boolean {
  const successor = session.parent?.successor;
  if (!successor || successor.hash === session.hash) return false;
  return Math.abs((session.parent!.usedAt ?? 0) - session.record.issuedAt) > graceMs;
}

/** The successor already issued for a used token, when it was used at most `graceMs` ago. */
export async function graceSuccessor(
  presented: string,
  session: StoredSession,
  graceMs: number,
  now: number,
): Promise<RefreshTokenGrant | undefined> {
  const { record } = session;
  if (record.usedAt === undefined || !record.successor || now - record.usedAt > graceMs) return undefined;
  const token = await openSuccessor(presented, session.hash, record.successor.sealed);
  if (!token) return undefined;
  const expiresIn = Math.max(1, Math.floor((record.successor.expiresAt - now) / 1000));
  return { token, hash: record.successor.hash, expiresIn };
}

/** Refresh records, family revocations and member sign-outs, all in KV (times in ms). */
export class RefreshStore {
  constructor(
    private readonly kv: KVNamespace,
    private readonly source: ConfigSource,
    private readonly now: () => number,
  ) {}

  /** Starts a new session (token family) for `owner`, valid `REFRESH_TOKEN_TTL` seconds. */
  issue(owner: SessionOwner, now = this.now()): Promise<IssuedRefreshToken> {
    return this.writeToken({ familyId: crypto.randomUUID(), familyCreatedAt: now, ...owner }, now);
  }

  /** The stored record of a (format-checked) token, or undefined when unknown or expired from KV. */
  async find(log: Logger, token: string): Promise<RefreshRecord | undefined> {
    return this.readJson(log, REFRESH_KEYS.token(await refreshTokenHash(token)), parseRefreshRecord);
  }

  /** Reads a (format-checked) token's record, its family's revocation state and its parent; undefined when unknown. */
  async load(log: Logger, token: string): Promise<StoredSession | undefined> {
    const hash = await refreshTokenHash(token);
    const record = await this.readJson(log, REFRESH_KEYS.token(hash), parseRefreshRecord);
    if (!record) return undefined;
    const [family, member, parent] = await Promise.all([
      this.readJson(log, REFRESH_KEYS.family(record.familyId), parseFamilyRevocation),
      this.readJson(log, REFRESH_KEYS.member(record.memberId), parseMemberNotBefore),
      record.parent ? this.readJson(log, REFRESH_KEYS.token(record.parent), parseRefreshRecord) : undefined,
    ]);
    const signedOut = member !== undefined && record.familyCreatedAt <= member.notBefore;
    return { hash, record, parent, revoked: family ? "family_revoked" : signedOut ? "member_signed_out" : undefined };
  }

  /**
   * Issues the successor of `presented` in the same family, then marks `presented` used and keeps
   * the successor sealed under it (for the grace window). Successor first: a failure in between
   * leaves the old token working rather than a session with no valid token.
   */
  async rotate(presented: string, session: StoredSession, now = this.now()): Promise<IssuedRefreshToken> {
    const { hash, record } = session;
    const { familyId, familyCreatedAt, memberId, organisationId } = record;
    const next = await this.writeToken({ familyId, familyCreatedAt, memberId, organisationId, parent: hash }, now);
    const sealed = await sealSuccessor(presented, hash, next.token);
    const used: RefreshRecord = {
      ...record,
      usedAt: now,
      successor: { hash: next.hash, sealed, expiresAt: next.record.expiresAt },
    };
    await this.kv.put(REFRESH_KEYS.token(hash), JSON.stringify(used), { expirationTtl: kvTtl(record.expiresAt, now) });
    return next;
  }

  /** Ends a whole family (every token ever rotated from one login); idempotent, writes at most once. */
  async revokeFamily(log: Logger, record: RefreshRecord, reason: string, now = this.now()): Promise<void> {
    const key = REFRESH_KEYS.family(record.familyId);
    if (await this.readJson(log, key, parseFamilyRevocation)) return;
    const value = { revokedAt: now, memberId: record.memberId, reason } satisfies FamilyRevocation;
    await this.kv.put(key, JSON.stringify(value), {
      expirationTtl: this.source.config.refreshTokenTtl + MIN_KV_TTL_SECONDS,
    });
  }

  /**
   * Ends every session a member started until now. One key per member; KV allows one write per key
   * per second, so a refused write is retried once a second later.
   */
  async revokeMemberSessions(memberId: number): Promise<void> {
    const now = this.now();
    const put = () =>
      this.kv.put(REFRESH_KEYS.member(memberId), JSON.stringify({ notBefore: now }), {
        expirationTtl: this.source.config.refreshTokenTtl + MIN_KV_TTL_SECONDS,
      });
    try {
      await put();
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await put();
    }
  }

  private async readJson<T>(log: Logger, key: string, parse: (raw: unknown) => T | undefined): Promise<T | undefined> {
    const raw = await this.kv.get(key, { type: "json", cacheTtl: READ_CACHE_TTL_SECONDS });
    if (raw === null) return undefined;
    const parsed = parse(raw);
    if (parsed === undefined) log.error("refresh_store_unreadable", { key: key.split(":")[0] });
    return parsed;
  }

  private async writeToken(
    fields: Omit<RefreshRecord, "v" | "issuedAt" | "expiresAt">,
    now: number,
  ): Promise<IssuedRefreshToken> {
    const { refreshTokenTtl } = this.source.config;
    const token = generateRefreshToken();
    const hash = await refreshTokenHash(token);
    const record: RefreshRecord = { v: 1, ...fields, issuedAt: now, expiresAt: now + refreshTokenTtl * 1000 };
    await this.kv.put(REFRESH_KEYS.token(hash), JSON.stringify(record), {
      expirationTtl: kvTtl(record.expiresAt, now),
    });
    return { token, hash, record, expiresIn: refreshTokenTtl };
  }
}
