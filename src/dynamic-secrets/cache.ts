/** A read-through cache (isolate → KV → D1) whose answers are never more than 55 s older than their D1 read. */
import { LruCache } from "../cache/lru";
import type { WaitUntil } from "../config";
import type { Logger } from "../log";

const ISOLATE_TTL_MS = 30_000;
/** Longest any answer is used after its D1 read, wherever cached: the contract's 60 s less 5 s of clock skew. */
const MAX_STALENESS_MS = 55_000;
const KV_MIN_TTL_SECONDS = 60;

/** How one kind of entry is loaded, stored in KV (no secrets in plain text) and made usable. */
export interface CacheSpec<Stored, Live> {
  kvKey(key: string): string;
  isStored(value: unknown): value is Stored;
  /** Reads the entry from D1 (`fresh`: the primary, else a replica); an empty answer is cached too. */
  load(key: string, fresh: boolean): Promise<Stored>;
  hydrate(log: Logger, key: string, stored: Stored): Promise<Live>;
  limit: number;
  /** Size of a separate LRU for answers {@link isEmpty} calls negative, so unknown keys never evict known ones. */
  negativeLimit?: number;
  isEmpty?(stored: Stored): boolean;
  kvTtlSeconds?(stored: Stored): number;
  /** Asked before each D1 load with KV's stale copy, if any; false refuses it ({@link LoadRefused}). */
  admitLoad?(key: string, stale: Stored | undefined): boolean;
}

/** Thrown by {@link StalenessBoundCache.get} when {@link CacheSpec.admitLoad} refused a D1 load. */
export class LoadRefused extends Error {
  override name = "LoadRefused";
}

interface KvEnvelope<Stored> {
  loadedAt: number;
  value: Stored;
}

interface Loaded<Stored, Live> {
  live: Live;
  stored: Stored;
  loadedAt: number;
}

/** Empty while its request loads it: no promise of a load is shared (CONTRIBUTING.md § add a cache). */
interface IsolateEntry<Stored, Live> {
  loaded?: Loaded<Stored, Live>;
}

/** The isolate → KV → D1 cache of one kind of entry; see {@link MAX_STALENESS_MS} for its bound. */
export class StalenessBoundCache<Stored, Live> {
  private readonly entries: LruCache<string, IsolateEntry<Stored, Live>>;
  private readonly negatives: LruCache<string, IsolateEntry<Stored, Live>> | undefined;

  constructor(
    private readonly spec: CacheSpec<Stored, Live>,
    private readonly kv: KVNamespace,
    private readonly now: () => number,
  ) {
    this.entries = new LruCache({ maxEntries: spec.limit, ttlMs: ISOLATE_TTL_MS, now });
    if (spec.isEmpty)
      this.negatives = new LruCache({ maxEntries: spec.negativeLimit ?? spec.limit, ttlMs: ISOLATE_TTL_MS, now });
  }

  /** The entry for `key` from this isolate, KV or D1, at most {@link MAX_STALENESS_MS} stale. */
  async get(ctx: WaitUntil, log: Logger, key: string): Promise<Live> {
    const loaded = (this.entries.get(key) ?? this.negatives?.get(key))?.loaded;
    if (loaded && this.now() - loaded.loadedAt < MAX_STALENESS_MS) return loaded.live;
    return (
      await this.track(
        key,
        this.fetch(ctx, key).then((envelope) => this.hydrate(log, key, envelope)),
      )
    ).live;
  }

  /** Reloads `key` from D1 into KV and drops this isolate's entry, e.g. after this isolate changed it in D1. */
  async republish(key: string): Promise<void> {
    this.drop(key);
    const envelope = { loadedAt: this.now(), value: await this.spec.load(key, true) };
    this.drop(key);
    await this.put(key, envelope);
  }

  private drop(key: string): void {
    this.entries.delete(key);
    this.negatives?.delete(key);
  }

  private async hydrate(
    log: Logger,
    key: string,
    { value, loadedAt }: KvEnvelope<Stored>,
  ): Promise<Loaded<Stored, Live>> {
    return { live: await this.spec.hydrate(log, key, value), stored: value, loadedAt };
  }

  private track(key: string, pending: Promise<Loaded<Stored, Live>>): Promise<Loaded<Stored, Live>> {
    const entry: IsolateEntry<Stored, Live> = {};
    this.drop(key);
    const waiting = this.negatives ?? this.entries;
    waiting.set(key, entry);
    pending.then(
      (loaded) => {
        entry.loaded = loaded;
        const { stored } = loaded;
        if (this.negatives && !this.spec.isEmpty?.(stored) && this.negatives.get(key) === entry) {
          this.negatives.delete(key);
          this.entries.set(key, entry);
        }
      },
      () => {
        if (waiting.get(key) === entry) waiting.delete(key);
      },
    );
    return pending;
  }

  private async fetch(ctx: WaitUntil, key: string): Promise<KvEnvelope<Stored>> {
    const fromKv = await this.kv.get<KvEnvelope<Stored>>(this.spec.kvKey(key), "json").catch(() => null);
    // KV failing, hanging (bounded) or holding garbage is a miss: D1 answers instead.
    const valid =
      fromKv !== null &&
      typeof fromKv === "object" &&
      typeof fromKv.loadedAt === "number" &&
      this.spec.isStored(fromKv.value);
    if (valid && this.now() - fromKv.loadedAt < MAX_STALENESS_MS) return fromKv;
    if (this.spec.admitLoad && !this.spec.admitLoad(key, valid ? fromKv.value : undefined)) throw new LoadRefused();
    return this.loadAndPublish(ctx, key);
  }

  private async loadAndPublish(ctx: WaitUntil, key: string): Promise<KvEnvelope<Stored>> {
    const envelope = { loadedAt: this.now(), value: await this.spec.load(key, false) };
    ctx.waitUntil(this.put(key, envelope).catch(() => undefined));
    return envelope;
  }

  private put(key: string, envelope: KvEnvelope<Stored>): Promise<void> {
    const ttl = Math.max(KV_MIN_TTL_SECONDS, this.spec.kvTtlSeconds?.(envelope.value) ?? KV_MIN_TTL_SECONDS);
    return this.kv.put(this.spec.kvKey(key), JSON.stringify(envelope), { expirationTtl: ttl });
  }
}
