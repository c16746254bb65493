/** The one bounded cache policy of the gateway: least-recently-used eviction with an optional time to live. */

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
}

/**
 * A `Map` kept in recency order (insertion order of a `Map`): `get` and `set` are O(1), a full
 * cache evicts only its oldest entry, and nothing ever clears the whole cache at once.
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
    this.entries.delete(key);
    if (entry.expiresAt !== Infinity && entry.expiresAt <= this.now()) return undefined;
    this.entries.set(key, entry);
    return entry.value;
  }

  /** Stores `value` as the most recently used entry, evicting the least recently used one when full. */
  set(key: Key, value: Value): void {
    if (!this.entries.delete(key) && this.entries.size >= this.maxEntries) {
      this.entries.delete(this.entries.keys().next().value!);
    }
    const expiresAt = this.ttlMs === undefined ? Infinity : this.now() + this.ttlMs;
    this.entries.set(key, { value, expiresAt });
  }

  /** Forgets `key`; true when it was held. */
  delete(key: Key): boolean {
    return this.entries.delete(key);
  }
}
