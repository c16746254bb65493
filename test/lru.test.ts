// The one bounded cache policy: LRU eviction one entry at a time, optional TTL on an injected clock.
import { describe, expect, it } from "vitest";
import { LruCache } from "../src/cache/lru";

describe("LruCache", () => {
  it("evicts only the least recently used entry when full", () => {
    const cache = new LruCache<string, number>({ maxEntries: 3 });
    cache.set("a", 1);
    cache.set("b", 2);
    cache.set("c", 3);
    expect(cache.get("a")).toBe(1);
    cache.set("d", 4);
    expect(cache.get("b")).toBeUndefined();
    expect([cache.get("a"), cache.get("c"), cache.get("d")]).toEqual([1, 3, 4]);
    expect(cache.size).toBe(3);
  });

  it("keeps its size when a held key is set again", () => {
    const cache = new LruCache<string, number>({ maxEntries: 2 });
    cache.set("a", 1);
    cache.set("b", 2);
    cache.set("a", 10);
    cache.set("c", 3);
    expect(cache.get("a")).toBe(10);
    expect(cache.get("b")).toBeUndefined();
    expect(cache.size).toBe(2);
  });

  it("never clears wholesale under a burst of distinct keys: a hot entry survives", () => {
    const cache = new LruCache<number, string>({ maxEntries: 100 });
    cache.set(-1, "hot");
    for (let i = 0; i < 10_000; i++) {
      cache.set(i, "cold");
      expect(cache.get(-1)).toBe("hot");
    }
    expect(cache.size).toBe(100);
  });

  it("expires entries after their TTL on the injected clock", () => {
    let now = 1_000;
    const cache = new LruCache<string, string>({ maxEntries: 10, ttlMs: 60_000, now: () => now });
    cache.set("a", "x");
    now += 59_999;
    expect(cache.get("a")).toBe("x");
    now += 1;
    expect(cache.get("a")).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("forgets a deleted key", () => {
    const cache = new LruCache<string, string>({ maxEntries: 10 });
    cache.set("a", "x");
    expect(cache.delete("a")).toBe(true);
    expect(cache.get("a")).toBeUndefined();
    expect(cache.delete("a")).toBe(false);
  });
});
