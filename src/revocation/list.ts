/** The isolate's copy of the recent access-token revocations (every shard): checked in memory on every request, re-read from KV in the background. */
import type { Config, WaitUntil } from "../config";
import {
  REVOCATION_SHARDS,
  revocationBucket,
  revocationShard,
  revocationShardKey,
  revocationShardName,
  type RevocationRequest,
  type RevocationSnapshot,
  type Revocations,
} from "./record";
import { unavailable } from "../gateway-error";
import type { Logger } from "../log";
import { issuedAtOf, revokedBy, type Instant } from "./order";
import { STORAGE_WAIT_MS } from "../storage/bounded";
import type { AccessClaims } from "../tokens/claims";

/** From this age on, a request starts a background re-read (ms). */
export const REVOCATIONS_REFRESH_MS = 19_000;
/**
 * Never used older than this (ms): a request that finds the copy older waits for a re-read, and fails
 * closed (503 `temporarily_unavailable`) when that fails. With the publisher's ≤ 1 s coalescing and KV's own edge cache
 * (`cacheTtl: 30`), a revocation reaches every isolate within 1 s + 30 s + 29 s.
 */
export const REVOCATIONS_MAX_AGE_MS = 29_000;
const READ_CACHE_TTL_SECONDS = 30;

function parse(raw: unknown): RevocationSnapshot | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const value = raw as Partial<RevocationSnapshot>;
  const isTable = (table: unknown): table is Record<string, number> =>
    typeof table === "object" &&
    table !== null &&
    Object.values(table as Record<string, unknown>).every((v) => typeof v === "number");
  if (value.v !== 1 || typeof value.version !== "number" || typeof value.publishedAt !== "number") return undefined;
  if (!isTable(value.members) || !isTable(value.organisations)) return undefined;
  if (value.buckets !== undefined && !isTable(value.buckets)) return undefined;
  if (value.legacy !== undefined && value.legacy !== true) return undefined;
  if (value.exact !== undefined && value.exact !== true) return undefined;
  if (value.shard !== undefined && !Number.isSafeInteger(value.shard)) return undefined;
  return value as RevocationSnapshot;
}

/** Whose tokens and sessions to revoke. */
export interface RevocationSubjects {
  members?: readonly number[];
  organisations?: readonly string[];
}

const later = (a: Instant | undefined, b: Instant | undefined) =>
  a === undefined || (b !== undefined && b > a) ? b : a;

/** One shard's entries as this isolate holds them: subject → the revocation's instant (ms). */
class ShardCopy {
  readonly members: Map<number, Instant>;
  readonly organisations: Map<string, Instant>;
  readonly buckets: Map<number, Instant>;
  /** Holds subjects of other shards too (shard 0, entries from before sharding). */
  readonly legacy: boolean;

  constructor(
    readonly version: number,
    snapshot?: RevocationSnapshot,
  ) {
    this.legacy = snapshot !== undefined && (snapshot.legacy === true || snapshot.shard === undefined);
    // A published value is seconds with the millisecond as a fraction; a whole second from before means its end.
    const instant = snapshot?.exact ? (at: number) => Math.round(at * 1000) : (at: number) => at * 1000 + 999;
    const entries = (table: Record<string, number> | undefined) =>
      Object.entries(table ?? {}).map(([key, at]) => [key, instant(at)] as const);
    this.members = new Map(entries(snapshot?.members).map(([id, at]) => [Number(id), at]));
    this.organisations = new Map(entries(snapshot?.organisations));
    this.buckets = new Map(entries(snapshot?.buckets).map(([bucket, at]) => [Number(bucket), at]));
  }

  get empty(): boolean {
    return this.members.size === 0 && this.organisations.size === 0 && this.buckets.size === 0;
  }
}

/** What a {@link RevocationList} reads and calls. */
export interface RevocationListDeps {
  kv: KVNamespace;
  objects: DurableObjectNamespace<Revocations>;
  now: () => number;
}

/**
 * One per gateway (isolate). Holds, per shard, member → revocation instant and organisation → revocation instant
 * (ms) in maps; {@link isRevoked} is a few map lookups (the subject's shard, and shard 0 as well while
 * it still holds entries written before the record was sharded). Every shard is re-read from KV in the
 * background once the copy is 19 s old (one bulk read of all keys); a copy older than 29 s is never used
 * without a re-read (so an idle isolate's first request waits for it). A shard that cannot be read fails
 * requests closed. A request awaits only a re-read it sent itself (CONTRIBUTING.md § add a cache): each request of
 * an idle isolate's first burst sends its own bulk read (one per request in flight, until one has answered).
 */
export class RevocationList {
  private shards: ShardCopy[] = Array.from(
    { length: REVOCATION_SHARDS },
    () => new ShardCopy(Number.NEGATIVE_INFINITY),
  );
  private empty = true;
  private loadedAt = Number.NEGATIVE_INFINITY;
  /** Gateway time the last background re-read was sent; another is sent once it answered or its wait ran out. */
  private backgroundSince: number | undefined;

  constructor(private readonly deps: RevocationListDeps) {}

  /**
   * Makes sure the copy is fresh enough for this request: nothing to wait for (the usual case; a
   * background re-read may start, at most one per {@link STORAGE_WAIT_MS}), or, when the copy is too old to
   * use, this request's own re-read, which it must await first.
   */
  ensureFresh(ctx: WaitUntil, log: Logger): Promise<void> | undefined {
    const now = this.deps.now();
    const age = now - this.loadedAt;
    if (age < REVOCATIONS_REFRESH_MS) return undefined;
    if (age > REVOCATIONS_MAX_AGE_MS) return this.load();
    if (this.backgroundSince === undefined || now - this.backgroundSince >= STORAGE_WAIT_MS) {
      const since = (this.backgroundSince = now);
      const reading = this.load()
        .catch((error: unknown) => log.error("revocations_read_failed", { error: String(error) }))
        .finally(() => {
          if (this.backgroundSince === since) this.backgroundSince = undefined;
        });
      ctx.waitUntil(reading);
    }
    return undefined;
  }

  /**
   * True when a gateway-issued (fixed-secret) token's member or organisation was revoked at or after the
   * instant the token was issued ({@link revokedBy}). Dynamic-secret tokens are minted by the organisation's own integration, which can
   * sign a fresh one at any time, so an issue time proves nothing about them: they are held by their live
   * checks instead (member active, plan, the secret not revoked; each ≤ 60 s).
   */
  isRevoked(claims: AccessClaims): boolean {
    if (claims.secretType !== "fixed" || this.empty) return false;
    const member = claims.memberEntityId;
    const organisation = claims.organisationEntityIdentifier;
    const memberRevokedAt =
      member === undefined ? undefined : this.latestRevocation(`m:${member}`, (copy) => copy.members.get(member));
    const organisationRevokedAt = this.latestRevocation(`o:${organisation}`, (copy) =>
      copy.organisations.get(organisation),
    );
    if (memberRevokedAt === undefined && organisationRevokedAt === undefined) return false;
    const issuedAt = issuedAtOf(claims);
    return revokedBy(issuedAt, memberRevokedAt) || revokedBy(issuedAt, organisationRevokedAt);
  }

  /**
   * Revokes every access token of `subjects` issued at or before `at` (ms), through the `Revocations` object of
   * each subject's shard, which publishes to KV; this isolate applies it at once. Resolves only when every shard
   * concerned recorded it.
   */
  async revoke(
    config: Pick<Config, "accessTokenTtl" | "clockSkew">,
    subjects: RevocationSubjects,
    at: Instant,
  ): Promise<void> {
    const now = this.deps.now();
    const byShard = new Map<number, { members: number[]; organisations: string[] }>();
    const shardOf = (subject: string) => {
      const shard = revocationShard(subject);
      let group = byShard.get(shard);
      if (!group) byShard.set(shard, (group = { members: [], organisations: [] }));
      return group;
    };
    for (const id of subjects.members ?? []) shardOf(`m:${id}`).members.push(id);
    for (const identifier of subjects.organisations ?? []) shardOf(`o:${identifier}`).organisations.push(identifier);
    await Promise.all(
      [...byShard].map(async ([shard, group]) => {
        const request: RevocationRequest = {
          shard,
          ...group,
          at,
          keepSeconds: config.accessTokenTtl + config.clockSkew,
          now,
        };
        const object = this.deps.objects.get(this.deps.objects.idFromName(revocationShardName(shard)));
        this.install(shard, await object.revoke(request));
      }),
    );
  }

  /** The latest instant a subject was revoked at, by name or through its bucket, in every copy that may hold it. */
  private latestRevocation(subject: string, named: (copy: ShardCopy) => Instant | undefined): Instant | undefined {
    const shard = revocationShard(subject);
    const legacy = this.shards[0]!;
    const copies = shard === 0 || !legacy.legacy ? [this.shards[shard]!] : [this.shards[shard]!, legacy];
    let latest: Instant | undefined;
    for (const copy of copies) {
      if (copy.empty) continue;
      latest = later(latest, named(copy));
      if (copy.buckets.size > 0) latest = later(latest, copy.buckets.get(revocationBucket(subject)));
    }
    return latest;
  }

  /**
   * Reads every shard in one bulk KV read (one round trip, outside the per-invocation connection limit that
   * 16 separate reads would queue behind); installs each record read, and counts the copy as fresh only
   * when all were readable.
   */
  private async load(): Promise<void> {
    const keys = this.shards.map((_, shard) => revocationShardKey(shard));
    const records = await this.deps.kv.get<unknown>(keys, { type: "json", cacheTtl: READ_CACHE_TTL_SECONDS });
    const readAt = this.deps.now();
    let unreadable: string | undefined;
    keys.forEach((key, shard) => {
      const raw = records.get(key) ?? null;
      if (raw === null) return this.install(shard, undefined);
      const snapshot = parse(raw);
      if (snapshot) this.install(shard, snapshot);
      else unreadable ??= key;
    });
    if (unreadable !== undefined) throw unavailable("kv", `unreadable ${unreadable} record`);
    this.loadedAt = Math.max(this.loadedAt, readAt);
  }

  /**
   * Replaces one shard's maps, unless the same or a newer record of it is already installed (a re-read may
   * return an older edge copy; an unchanged shard is not rebuilt). No record at all (never written, or every
   * entry expired) reads as version 0.
   */
  private install(shard: number, snapshot: RevocationSnapshot | undefined): void {
    const version = snapshot?.version ?? 0;
    if (version <= this.shards[shard]!.version) return;
    this.shards[shard] = new ShardCopy(version, snapshot);
    this.empty = this.shards.every((copy) => copy.empty);
  }
}
