/** The isolate's copy of the recent access-token revocations (every shard): checked in memory on every request, re-read from KV in the background. */
import type { Config, WaitUntil } from "../config";
import {
  FIRST_LAYOUT,
  REVOCATION_LAYOUT,
  revocationBucket,
  revocationShard,
  type RevocationLayout,
  type RevocationRequest,
  type RevocationSnapshot,
  type Revocations,
} from "./record";
import { unavailable } from "../gateway-error";
import type { Logger } from "../log";
import { issuedAtOf, revokedBy, type Instant, type IssuedToken } from "./order";
import { STORAGE_WAIT_MS } from "../storage/bounded";

/** From this age on, a request starts a background re-read (ms). */
export const REVOCATIONS_REFRESH_MS = 19_000;
/** Never used older than this (ms): the request re-reads, and fails closed when that fails. */
export const REVOCATIONS_MAX_AGE_MS = 29_000;
const READ_CACHE_TTL_SECONDS = 30;
/** Keys one bulk KV read may name. */
export const BULK_READ_KEYS = 100;

function parse(raw: unknown): RevocationSnapshot | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const value = raw as Partial<RevocationSnapshot>;
  const isTable = (table: unknown): table is Record<string, number> =>
    typeof table === "object" &&
    table !== null &&
    Object.values(table as Record<string, unknown>).every((v) => typeof v === "number");
  if (value.v !== 1 && value.v !== 2) return undefined;
  if (typeof value.version !== "number" || typeof value.publishedAt !== "number") return undefined;
  if (!isTable(value.members) || !isTable(value.organisations)) return undefined;
  if (value.buckets !== undefined && !isTable(value.buckets)) return undefined;
  if (value.legacy !== undefined && value.legacy !== true) return undefined;
  if (value.exact !== undefined && value.exact !== true) return undefined;
  if (value.v === 2 && !Number.isSafeInteger(value.base)) return undefined;
  if (value.shard !== undefined && !Number.isSafeInteger(value.shard)) return undefined;
  return value as RevocationSnapshot;
}

/** Whose tokens and sessions to revoke. */
export interface RevocationSubjects {
  members?: readonly number[];
  organisations?: readonly string[];
}

/** Whose rows D1 writes changed, for reads from replicas: also accounts (`throttleKey` of an email) of new members. */
export interface WrittenSubjects extends RevocationSubjects {
  accounts?: readonly string[];
  /** Domains whose single sign-on routing changed. */
  domains?: readonly string[];
}

/** The record's subject names (`m:`, `o:`, `a:`, `d:`) of `subjects`, each once. */
function subjectNames(subjects: WrittenSubjects): string[] {
  return [
    ...new Set([
      ...(subjects.members ?? []).map((id) => `m:${id}`),
      ...(subjects.organisations ?? []).map((identifier) => `o:${identifier}`),
      ...(subjects.accounts ?? []).map((account) => `a:${account}`),
      ...(subjects.domains ?? []).map((domain) => `d:${domain}`),
    ]),
  ];
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
    this.legacy = snapshot?.v === 1 && (snapshot.legacy === true || snapshot.shard === undefined);
    // Version 1 without `exact`: a whole second means its end.
    const base = snapshot?.base ?? 0;
    const instant =
      snapshot?.v === 2
        ? (at: number) => base + at
        : snapshot?.exact
          ? (at: number) => Math.round(at * 1000)
          : (at: number) => at * 1000 + 999;
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

/** What {@link RevocationList.isRevoked} reads of an access token's claims. */
export interface RevocableToken extends IssuedToken {
  secretType: "fixed" | "dynamic";
  memberEntityId?: number;
  organisationEntityIdentifier: string;
}

/** What a {@link RevocationList} reads and calls. */
export interface RevocationListDeps {
  kv: KVNamespace;
  objects: DurableObjectNamespace<Revocations>;
  now: () => number;
}

function byShard(names: readonly string[]): Map<number, string[]> {
  const shards = new Map<number, string[]>();
  for (const name of names) {
    const shard = revocationShard(name);
    shards.set(shard, [...(shards.get(shard) ?? []), name]);
  }
  return shards;
}

const emptyCopies = (layout: RevocationLayout) =>
  Array.from({ length: layout.shards }, () => new ShardCopy(Number.NEGATIVE_INFINITY));

/**
 * One per isolate: every shard's revocations in maps, so {@link isRevoked} is a few lookups; re-read from KV in the
 * background. A request awaits only a re-read it sent itself (CONTRIBUTING.md § add a cache). Why: docs/security.md
 * § Access-token revocation.
 */
export class RevocationList {
  private current = emptyCopies(REVOCATION_LAYOUT);
  private first = emptyCopies(FIRST_LAYOUT);
  /** Read until one re-read finds none of the first layout's keys. */
  private firstLayoutLive = true;
  private empty = true;
  private loadedAt = Number.NEGATIVE_INFINITY;
  /** Gateway time the last background re-read was sent; another is sent once it answered or its wait ran out. */
  private backgroundSince: number | undefined;

  constructor(private readonly deps: RevocationListDeps) {}

  /** Undefined when the copy is fresh enough (maybe starting a background re-read), else this request's own re-read. */
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

  /** Whether a fixed-secret token's member or organisation was revoked since its issue (dynamic ones rest on live checks). */
  isRevoked(claims: RevocableToken): boolean {
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

  /** Revokes the access tokens of `subjects` issued at or before `at` in every shard concerned, and here at once. */
  async revoke(
    config: Pick<Config, "accessTokenTtl" | "clockSkew">,
    subjects: RevocationSubjects,
    at: Instant,
    bookmark?: string,
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
          layout: REVOCATION_LAYOUT.id,
          shard,
          ...group,
          at,
          keepSeconds: config.accessTokenTtl + config.clockSkew,
          now,
          ...(bookmark === undefined ? {} : { bookmark }),
        };
        this.install(this.current, shard, await this.object(shard).revoke(request));
      }),
    );
  }

  /** Keeps `bookmark`, of D1 writes to `subjects`' rows, in their shards for {@link bookmarkFor}. */
  async remember(
    config: Pick<Config, "accessTokenTtl" | "clockSkew">,
    subjects: WrittenSubjects,
    bookmark: string,
  ): Promise<void> {
    const now = this.deps.now();
    const keepSeconds = config.accessTokenTtl + config.clockSkew;
    await Promise.all(
      [...byShard(subjectNames(subjects))].map(([shard, names]) =>
        this.object(shard).remember({ shard, subjects: names, bookmark, keepSeconds, now }),
      ),
    );
  }

  /** The latest D1 bookmark kept for any of `subjects`, or undefined: a read of their rows must be at least this fresh. */
  async bookmarkFor(subjects: WrittenSubjects): Promise<string | undefined> {
    const now = this.deps.now();
    const bookmarks = await Promise.all(
      [...byShard(subjectNames(subjects))].map(([shard, names]) => this.object(shard).bookmark(names, now)),
    );
    let latest: string | undefined;
    for (const bookmark of bookmarks) if (bookmark && (latest === undefined || bookmark > latest)) latest = bookmark;
    return latest;
  }

  private object(shard: number): DurableObjectStub<Revocations> {
    return this.deps.objects.get(this.deps.objects.idFromName(REVOCATION_LAYOUT.name(shard)));
  }

  /** The latest instant a subject was revoked at, by name or through its bucket, in every copy that may hold it. */
  private latestRevocation(subject: string, named: (copy: ShardCopy) => Instant | undefined): Instant | undefined {
    const copies = [this.current[revocationShard(subject)]!];
    if (this.firstLayoutLive) {
      const shard = revocationShard(subject, FIRST_LAYOUT);
      copies.push(this.first[shard]!);
      if (shard !== 0 && this.first[0]!.legacy) copies.push(this.first[0]!);
    }
    let latest: Instant | undefined;
    for (const copy of copies) {
      if (copy.empty) continue;
      latest = later(latest, named(copy));
      if (copy.buckets.size > 0) latest = later(latest, copy.buckets.get(revocationBucket(subject)));
    }
    return latest;
  }

  /**
   * Reads every shard in parallel bulk reads (separate reads would queue behind the per-invocation connection limit);
   * the copy counts as fresh only when every record was readable.
   */
  private async load(): Promise<void> {
    const layouts = this.firstLayoutLive ? [REVOCATION_LAYOUT, FIRST_LAYOUT] : [REVOCATION_LAYOUT];
    const keys = layouts.flatMap((layout) =>
      Array.from({ length: layout.shards }, (_, shard) => ({ layout, shard, key: layout.key(shard) })),
    );
    const chunks: (typeof keys)[] = [];
    for (let i = 0; i < keys.length; i += BULK_READ_KEYS) chunks.push(keys.slice(i, i + BULK_READ_KEYS));
    const records = new Map<string, unknown>();
    for (const read of await Promise.all(
      chunks.map((chunk) =>
        this.deps.kv.get<unknown>(
          chunk.map(({ key }) => key),
          { type: "json", cacheTtl: READ_CACHE_TTL_SECONDS },
        ),
      ),
    ))
      for (const [key, value] of read) records.set(key, value);
    const readAt = this.deps.now();
    let unreadable: string | undefined;
    let firstLayoutFound = false;
    for (const { layout, shard, key } of keys) {
      const copies = layout === FIRST_LAYOUT ? this.first : this.current;
      const raw = records.get(key) ?? null;
      if (raw === null) {
        this.install(copies, shard, undefined);
        continue;
      }
      if (layout === FIRST_LAYOUT) firstLayoutFound = true;
      const snapshot = parse(raw);
      if (snapshot) this.install(copies, shard, snapshot);
      else unreadable ??= key;
    }
    if (unreadable !== undefined) throw unavailable("kv", `unreadable ${unreadable} record`);
    if (this.firstLayoutLive && !firstLayoutFound) {
      this.firstLayoutLive = false;
      this.first = emptyCopies(FIRST_LAYOUT);
      this.empty = this.current.every((copy) => copy.empty);
    }
    this.loadedAt = Math.max(this.loadedAt, readAt);
  }

  /** Replaces one shard's maps unless the same or a newer record is installed (an edge copy may be older); none is version 0. */
  private install(copies: ShardCopy[], shard: number, snapshot: RevocationSnapshot | undefined): void {
    const version = snapshot?.version ?? 0;
    if (version <= copies[shard]!.version) return;
    copies[shard] = new ShardCopy(version, snapshot);
    this.empty = this.current.every((copy) => copy.empty) && this.first.every((copy) => copy.empty);
  }
}
