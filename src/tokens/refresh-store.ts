/** The refresh-token store in the TOKENS KV namespace: issue, load, rotate, revoke a family or a member's sessions. */
import type { ConfigSource } from "../config";
import { unavailable } from "../gateway-error";
import { revokedBy, type Instant } from "../revocation/order";
import type { Logger } from "../log";
import type { FamilyFacts, RefreshFamily } from "./refresh-family";
import { generateRefreshToken, openSuccessor, refreshTokenHash, sealSuccessor } from "./refresh-token";

/** KV keys of the refresh-token store (docs/storage.md § Refresh tokens). */
const REFRESH_KEYS = {
  token: (hash: string) => `refresh:${hash}`,
  family: (familyId: string) => `refresh-family:${familyId}`,
  member: (memberId: number) => `refresh-member:${memberId}`,
} as const;

const MIN_KV_TTL_SECONDS = 60;
const READ_CACHE_TTL_SECONDS = 30;

/** What KV holds for one refresh token (times in milliseconds). */
export interface RefreshRecord {
  v: 1;
  familyId: string;
  familyCreatedAt: number;
  memberId: number;
  organisationId: number;
  issuedAt: number;
  expiresAt: number;
  parent?: string | undefined;
  usedAt?: number | undefined;
  successor?: { hash: string; sealed: string; expiresAt: number } | undefined;
}

interface FamilyRevocation {
  revokedAt: number;
  memberId: number;
  reason: string;
}

interface MemberNotBefore {
  notBefore: number;
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  value !== null && typeof value === "object" && !Array.isArray(value);
const isNumber = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value);
const isInteger = (value: unknown): value is number => Number.isSafeInteger(value);
const isString = (value: unknown): value is string => typeof value === "string";

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

/** A refresh token as handed to a client; `expiresIn` in seconds. */
export interface RefreshTokenGrant {
  token: string;
  hash: string;
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

/** A presented token's record and KV's view of its revocation (the family's object has the last word). */
export interface StoredSession {
  hash: string;
  record: RefreshRecord;
  revoked: "family_revoked" | "member_signed_out" | undefined;
}

/** One exchange to decide; `prepared` is undefined when D1 ends the session (`end` says why). */
export interface SessionExchange {
  presented: string;
  session: StoredSession;
  prepared: PreparedSuccessor | undefined;
  graceMs: number;
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
}

/** Refresh records in KV (times in ms); only a family's `RefreshFamily` object decides whether a token rotates. */
export class RefreshStore {
  constructor(private readonly deps: RefreshStoreDeps) {}

  /** Starts a new session (token family) for `owner` at `now`, valid `REFRESH_TOKEN_TTL` seconds. */
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

  /** Writes a would-be successor's KV record, sealed under `presented`, before the family's object decides. */
  async prepareSuccessor(presented: string, session: StoredSession, now = this.deps.now()): Promise<PreparedSuccessor> {
    const { hash, record } = session;
    const next = await this.writeToken({ ...familyFacts(record), parent: hash }, now);
    return { next, sealed: await sealSuccessor(presented, hash, next.token) };
  }

  /** Has the family's object decide the exchange; KV's copies of its decision are then best effort. */
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

  /** Revokes a family through its object; throws 503 (family not revoked) when the object is unreachable. */
  async revokeFamily(log: Logger, record: RefreshRecord, reason: string, now = this.deps.now()): Promise<void> {
    const { revoked } = await this.family(record.familyId).revoke(familyFacts(record), reason, now, record.expiresAt);
    if (revoked) await this.publishRevocation(log, record, reason, now);
  }

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

  private async discard(log: Logger, hash: string): Promise<void> {
    await this.deps.kv
      .delete(REFRESH_KEYS.token(hash))
      .catch((error: unknown) => log.error("refresh_copy_failed", { copy: "discarded", error: String(error) }));
  }

  private family(familyId: string): DurableObjectStub<RefreshFamily> {
    return this.deps.families.get(this.deps.families.idFromName(familyId));
  }

  /** Lets every location refuse early the sessions a member started at or before `at` (D1 decides; this is KV's marker). */
  async markMemberSessionsRevoked(memberId: number, at: Instant): Promise<void> {
    const put = () =>
      this.deps.kv.put(REFRESH_KEYS.member(memberId), JSON.stringify({ notBefore: at }), {
        expirationTtl: this.deps.source.config.refreshTokenTtl + MIN_KV_TTL_SECONDS,
      });
    try {
      await put();
    } catch {
      // KV allows one write per key per second.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await put();
    }
  }

  private async readJson<T>(log: Logger, key: string, parse: (raw: unknown) => T | undefined): Promise<T | undefined> {
    const raw = await this.deps.kv.get(key, { type: "json", cacheTtl: READ_CACHE_TTL_SECONDS });
    if (raw === null) return undefined;
    const parsed = parse(raw);
    if (parsed !== undefined) return parsed;
    // A storage failure, not an unknown token: never a 401 that ends the session.
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
