/** The one bounded cache policy of the gateway: least-recently-used eviction (second chance) with an optional TTL. */

/** Limits of one {@link LruCache}. */
export interface LruOptions {
  /** Entries kept at most; the least recently used one makes room for a new one. */
  maxEntries: number;
  /** Milliseconds an entry is served after it was set; absent: until evicted. */
  ttlMs?: number;
  /** The clock TTLs are measured with, in ms since the epoch (default `Date.now()`). */
  now?: () => number;
}

interface Entry<Value> {
  value: Value;
  /** Ms since the epoch; `Infinity` without a TTL. */
  expiresAt: number;
  /** Read since it was set or last given a second chance. */
  used: boolean;
}

/**
 * A `Map` in insertion order with the second-chance approximation of LRU: a hit only marks its
 * entry used (no re-insertion on the hot path); a full cache walks from the oldest entry, moving
 * used ones to the back, and evicts the first unused one. `get` is O(1), `set` amortised O(1), and
 * nothing ever clears the whole cache at once.
 */
export class LruCache<Key, Value> {
  private readonly entries = new Map<Key, Entry<Value>>();
  private readonly maxEntries: number;
  private readonly ttlMs: number | undefined;
  private readonly now: () => number;

  constructor(options: LruOptions) {
    this.maxEntries = Math.max(1, options.maxEntries);
    this.ttlMs = options.ttlMs;
    this.now = options.now ?? (() => Date.now());
  }

  /** Entries currently held, expired ones not yet noticed included. */
  get size(): number {
    return this.entries.size;
  }

  /** The live value of `key`, now the most recently used; undefined when absent or expired. */
  get(key: Key): Value | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== Infinity && entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    entry.used = true;
    return entry.value;
  }

  /** Stores `value` as the newest entry, evicting the least recently used one when full. */
  set(key: Key, value: Value): void {
    if (!this.entries.delete(key) && this.entries.size >= this.maxEntries) this.evictOne();
    const expiresAt = this.ttlMs === undefined ? Infinity : this.now() + this.ttlMs;
    this.entries.set(key, { value, expiresAt, used: false });
  }

  /** Every live entry, oldest first, without marking any as used. */
  *peekAll(): IterableIterator<[Key, Value]> {
    const now = this.now();
    for (const [key, entry] of this.entries)
      if (entry.expiresAt === Infinity || entry.expiresAt > now) yield [key, entry.value];
  }

  /** Forgets `key`; true when it was held. */
  delete(key: Key): boolean {
    return this.entries.delete(key);
  }

  /** Evicts the oldest entry not read since its last chance; entries read meanwhile move to the back. */
  private evictOne(): void {
    for (const [key, entry] of this.entries) {
      this.entries.delete(key);
      if (!entry.used) return;
      entry.used = false;
      this.entries.set(key, entry);
    }
  }
}
