/** The one bounded cache policy of the gateway: least-recently-used eviction (second chance) with an optional TTL. */

/** Limits of one {@link LruCache}: `ttlMs` after `set` (absent: until evicted), measured by `now` (ms). */
export interface LruOptions {
  maxEntries: number;
  ttlMs?: number;
  now?: () => number;
}

interface Entry<Value> {
  value: Value;
  expiresAt: number;
  used: boolean;
}

/** A `Map` in insertion order with second-chance LRU: a hit only marks its entry used; `set` is amortised O(1). */
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

  delete(key: Key): boolean {
    return this.entries.delete(key);
  }

  private evictOne(): void {
    for (const [key, entry] of this.entries) {
      this.entries.delete(key);
      if (!entry.used) return;
      entry.used = false;
      this.entries.set(key, entry);
    }
  }
}
