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
const KV_TTL_SECONDS = 60;

/** How one kind of entry is loaded, stored in KV (no secrets in plain text) and made usable. */
export interface CacheSpec<Stored, Live> {
  /** KV key of an entry. */
  kvKey(key: string): string;
  /** Reads the entry from D1; an empty answer is cached like any other (negative caching). */
  load(key: string): Promise<Stored>;
  /** Turns the stored form into what callers use (e.g. imports keys); runs once per isolate load. */
  hydrate(log: Logger, key: string, stored: Stored): Promise<Live>;
  /** Isolate entries kept at most; past it the least recently used one goes. */
  limit: number;
}

interface KvEnvelope<Stored> {
  loadedAt: number;
  value: Stored;
}

interface IsolateEntry<Live> {
  pending: Promise<{ live: Live; loadedAt: number }>;
}

/** The isolate → KV → D1 cache of one kind of entry; see {@link MAX_STALENESS_MS} for its bound. */
export class StalenessBoundCache<Stored, Live> {
  private readonly entries: LruCache<string, IsolateEntry<Live>>;

  constructor(
    private readonly spec: CacheSpec<Stored, Live>,
    private readonly kv: KVNamespace,
    private readonly now: () => number,
  ) {
    this.entries = new LruCache({ maxEntries: spec.limit, ttlMs: ISOLATE_TTL_MS, now });
  }

  /** The entry for `key`, from this isolate, KV or D1, at most {@link MAX_STALENESS_MS} stale. */
  async get(ctx: WaitUntil, log: Logger, key: string): Promise<Live> {
    const cached = this.entries.get(key);
    if (cached) {
      const { live, loadedAt } = await cached.pending;
      if (this.now() - loadedAt < MAX_STALENESS_MS) return live;
    }
    return (await this.refresh(ctx, log, key)).live;
  }

  /** Drops `key` from this isolate and from KV, e.g. right after this isolate changed it in D1. */
  async forget(key: string): Promise<void> {
    this.entries.delete(key);
    await this.kv.delete(this.spec.kvKey(key));
  }

  private refresh(ctx: WaitUntil, log: Logger, key: string): Promise<{ live: Live; loadedAt: number }> {
    const pending = this.fetch(ctx, key).then(async ({ value, loadedAt }) => ({
      live: await this.spec.hydrate(log, key, value),
      loadedAt,
    }));
    const entry = { pending };
    this.entries.set(key, entry);
    pending.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return pending;
  }

  private async fetch(ctx: WaitUntil, key: string): Promise<KvEnvelope<Stored>> {
    const kvKey = this.spec.kvKey(key);
    const fromKv = await this.kv.get<KvEnvelope<Stored>>(kvKey, "json").catch(() => null);
    if (fromKv && typeof fromKv.loadedAt === "number" && this.now() - fromKv.loadedAt < MAX_STALENESS_MS) return fromKv;

    const envelope = { loadedAt: this.now(), value: await this.spec.load(key) };
    ctx.waitUntil(
      this.kv.put(kvKey, JSON.stringify(envelope), { expirationTtl: KV_TTL_SECONDS }).catch(() => undefined),
    );
    return envelope;
  }
}
