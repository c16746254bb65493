/** A read-through cache (isolate → KV → D1) whose answers are never more than 55 s older than their D1 read. */
import { LruCache } from "../cache/lru";
import type { WaitUntil } from "../config";
import type { Logger } from "../log";

/** Longest an isolate serves an entry before asking KV again. */
export const ISOLATE_TTL_MS = 30_000;
/**
 * Longest any cached answer is used after the D1 read it came from, wherever it is cached. KV
 * values carry their D1 read time, so even a KV edge cache serving an old value cannot stretch
 * this; 5 s under the contract's 60 s leaves room for clock differences between machines.
 */
export const MAX_STALENESS_MS = 55_000;
/** KV's smallest `expirationTtl`; the staleness check above is what bounds freshness. */
export const KV_MIN_TTL_SECONDS = 60;

/** How one kind of entry is loaded, stored in KV (no secrets in plain text) and made usable. */
export interface CacheSpec<Stored, Live> {
  /** KV key of an entry. */
  kvKey(key: string): string;
  /** True when a value read back from KV has the stored form; any other value is a miss (KV is only a cache). */
  isStored(value: unknown): value is Stored;
  /**
   * Reads the entry from D1; an empty answer is cached like any other (negative caching). `fresh`: from the
   * primary (after this isolate changed it), else from a read replica.
   */
  load(key: string, fresh: boolean): Promise<Stored>;
  /** Turns the stored form into what callers use (e.g. imports keys); runs once per isolate load. */
  hydrate(log: Logger, key: string, stored: Stored): Promise<Live>;
  /** Isolate entries kept at most; past it the least recently used one goes. */
  limit: number;
  /**
   * Negative answers (see {@link isEmpty}) are kept apart, in an LRU of this size, so a flood of
   * unknown keys only ever evicts other negatives. Without `isEmpty`, every entry shares `limit`.
   */
  negativeLimit?: number;
  /** True for a negative answer (e.g. an organisation without live secrets). */
  isEmpty?(stored: Stored): boolean;
  /** Seconds KV keeps a stored value (never under {@link KV_MIN_TTL_SECONDS}); default the minimum. */
  kvTtlSeconds?(stored: Stored): number;
  /**
   * Asked before each D1 load with KV's stale copy, if any; false refuses the load (the caller gets
   * {@link LoadRefused}) so that D1 reads for unknown keys can be rationed.
   */
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

/** An isolate entry: empty while its request loads it (no promise of that load is kept), then the loaded value. */
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

  /**
   * The entry for `key`, from this isolate, KV or D1, at most {@link MAX_STALENESS_MS} stale. A request
   * never awaits a load another request started: the Workers runtime ties I/O to the request that made it,
   * and a request continuing on another's promise can end up answering with the other's I/O objects (a 500,
   * or a hung request, under concurrent load). Concurrent misses of one key each read KV instead.
   */
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

  /**
   * Reads `key` from D1 now and writes it to KV, dropping this isolate's entry, e.g. right after this
   * isolate changed it in D1: the next use here reads the new value, and other isolates find it in KV
   * (within KV's propagation, never later than {@link MAX_STALENESS_MS} after their copy's D1 read).
   */
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

  /**
   * Keeps an entry for `key` that `pending` fills when it resolves. It waits among the negatives and moves to the
   * main entries only once it turned out positive, so unknown keys never evict a known one.
   */
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
