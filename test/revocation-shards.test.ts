// The sharded revocation record at ten times the target, the first layout still read, and a shard that cannot be read (a file of its own: KV caches reads for 30 s across the file).
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  FIRST_LAYOUT,
  REVOCATIONS_KEY,
  REVOCATION_LAYOUT,
  REVOCATION_SHARDS,
  revocationBucket,
  revocationShard,
  type RevocationSnapshot,
} from "../src/revocation/record";
import { BULK_READ_KEYS } from "../src/revocation/list";
import { bearer, fakeOrigin, fixedClaims, problem, signWithJose } from "./helpers";
import { expectRevoked, location, staleKv } from "./locations";

afterEach(() => vi.restoreAllMocks());

/** Every shard's published record, once each names all of its share of `members` (a shard writes ≤ 1/s). */
async function publishedShards(members: number[]): Promise<(RevocationSnapshot | null)[]> {
  const expected = Array.from({ length: REVOCATION_SHARDS }, () => 0);
  for (const id of members) expected[revocationShard(`m:${id}`)]!++;
  let records: (RevocationSnapshot | null)[] = [];
  await vi.waitFor(
    async () => {
      records = await Promise.all(
        expected.map((_, shard) => env.TOKENS.get<RevocationSnapshot>(REVOCATION_LAYOUT.key(shard), "json")),
      );
      records.forEach((record, shard) =>
        expect(Object.keys(record?.members ?? {}).length, `shard ${shard}`).toBe(expected[shard]),
      );
    },
    { timeout: 20_000, interval: 500 },
  );
  return records;
}

describe("sharded access-token revocation", () => {
  it("at 10× the target (≈ 181,500 live entries: 50 revocations/s kept 3,630 s) every shard stays named, under 64 KiB, with no bucket", async () => {
    fakeOrigin();
    const now = Date.now();
    const members = Array.from({ length: 181_500 }, (_, i) => 100_000_000 + i);
    const writer = location({ now });
    // Spread over the hour the entries are kept: each value is its ms after the record's oldest.
    const batches = 6;
    for (let batch = 0; batch < batches; batch++) {
      const share = members.filter((_, i) => i % batches === batch);
      const at = now - ((batches - 1 - batch) * 3_600_000) / batches;
      await writer.services.revocations.revoke({ accessTokenTtl: 3600, clockSkew: 30 }, { members: share }, at);
    }

    const records = await publishedShards(members);
    const sizes = records.map((record) => new TextEncoder().encode(JSON.stringify(record)).byteLength);
    for (const [shard, record] of records.entries()) {
      expect(record, `shard ${shard}`).not.toBeNull();
      expect(record!.v).toBe(2);
      expect(record!.buckets, `shard ${shard} never merges into buckets at 10× the target`).toBeUndefined();
      expect(sizes[shard], `shard ${shard}`).toBeLessThan(64 * 1024);
      for (const id of Object.keys(record!.members)) expect(revocationShard(`m:${id}`)).toBe(shard);
    }

    // Issued before every one of the revocations.
    const iat = Math.floor(now / 1000) - 3590;
    const reader = location({ now });
    const claims = (memberEntityId: number) => fixedClaims({ memberEntityId, iat });
    // Through the HTTP surface: the first request loads every shard; a revoked member is refused, another is not.
    await expectRevoked(await reader.request("/grids", bearer(await signWithJose(claims(members.at(-1)!)))));
    expect((await reader.request("/grids", bearer(await signWithJose(claims(99_999_999))))).status).toBe(200);
    for (const id of members.filter((_, i) => i % 997 === 0))
      expect(reader.services.revocations.isRevoked(claims(id) as never), `member ${id}`).toBe(true);
    for (let id = 300_000_000; id < 300_000_500; id++)
      expect(reader.services.revocations.isRevoked(claims(id) as never), `member ${id}`).toBe(false);
    expect(
      reader.services.revocations.isRevoked(
        fixedClaims({ memberEntityId: members.at(-1), iat: Math.floor(now / 1000) + 1 }) as never,
      ),
    ).toBe(false);
  }, 300_000);

  it("reads the first layout's shards beside the current ones while any of their keys exists, then stops reading them", async () => {
    fakeOrigin();
    const now = Date.now();
    let member = 40_000_000;
    while (revocationShard(`m:${member}`, FIRST_LAYOUT) === 0) member++;
    const shard = revocationShard(`m:${member}`, FIRST_LAYOUT);
    // What an isolate of the release before the current layout sends: no layout, a first-layout shard.
    const object = env.REVOCATIONS.get(env.REVOCATIONS.idFromName(FIRST_LAYOUT.name(shard)));
    await object.revoke({ shard, members: [member], at: now, keepSeconds: 3630, now });
    await vi.waitFor(async () => expect(await env.TOKENS.get(FIRST_LAYOUT.key(shard))).not.toBeNull(), {
      timeout: 5000,
    });
    const reads = vi.spyOn(env.TOKENS, "get");
    const reader = location({ now });
    const token = await signWithJose(fixedClaims({ memberEntityId: member, iat: Math.floor(now / 1000) - 10 }));
    await expectRevoked(await reader.request("/grids", bearer(token)));
    const named = reads.mock.calls.flatMap(([keys]) => keys as unknown as string[]);
    expect(reads.mock.calls.every(([keys]) => (keys as unknown as string[]).length <= BULK_READ_KEYS)).toBe(true);
    expect(named).toHaveLength(REVOCATION_SHARDS + FIRST_LAYOUT.shards);

    // Once none of the first layout's keys exists (KV expires each a minute after its last entry), it is not read.
    const frozen = staleKv(new Map([[FIRST_LAYOUT.key(shard), null]]));
    const bulkReads: string[][] = [];
    const counted = new Proxy(frozen, {
      get(target, property) {
        if (property !== "get") return Reflect.get(target, property);
        return (keys: string[], options: unknown) => {
          bulkReads.push(keys);
          return (target.get as (k: string[], o: unknown) => Promise<unknown>)(keys, options);
        };
      },
    });
    const clock = { now: now + 61_000 };
    const later = location(clock, { ...env, TOKENS: counted });
    expect((await later.request("/grids", bearer(token))).status, "no first-layout record: not revoked").toBe(200);
    expect(bulkReads.flat()).toHaveLength(REVOCATION_SHARDS + FIRST_LAYOUT.shards);
    bulkReads.length = 0;
    clock.now += 30_000;
    expect((await later.request("/grids", bearer(token))).status).toBe(200);
    expect(bulkReads.flat().sort()).toEqual(
      Array.from({ length: REVOCATION_SHARDS }, (_, i) => REVOCATION_LAYOUT.key(i)).sort(),
    );
  });

  it("a record published before sharding (no shard field) keeps refusing every subject it names, in any shard", async () => {
    fakeOrigin();
    const now = Date.now();
    const before = Math.floor(now / 1000);
    const inShard = (shard: (s: number) => boolean, from: number) => {
      let id = from;
      while (!shard(revocationShard(`m:${id}`, FIRST_LAYOUT))) id++;
      return id;
    };
    const named = inShard((s) => s !== 0, 60_000_000);
    const merged = inShard((s) => s !== 0 && s !== revocationShard(`m:${named}`, FIRST_LAYOUT), named + 1);
    let stranger = merged + 1;
    while (
      revocationShard(`m:${stranger}`, FIRST_LAYOUT) === 0 ||
      revocationBucket(`m:${stranger}`) === revocationBucket(`m:${merged}`)
    )
      stranger++;
    const unsharded = {
      v: 1,
      version: 7,
      publishedAt: now,
      members: { [named]: before },
      organisations: {},
      buckets: { [revocationBucket(`m:${merged}`)]: before },
    };
    const tokens = staleKv(new Map([[REVOCATIONS_KEY, JSON.stringify(unsharded)]]));
    const reader = location({ now }, { ...env, TOKENS: tokens });
    const token = (memberEntityId: number) => signWithJose(fixedClaims({ memberEntityId, iat: before - 10 }));
    await expectRevoked(await reader.request("/grids", bearer(await token(named))));
    await expectRevoked(await reader.request("/grids", bearer(await token(merged))));
    expect((await reader.request("/grids", bearer(await token(stranger)))).status).toBe(200);
  });

  it("a revocation from the release before sharding (no shard, sent to `global`) is recorded in shard 0 and refuses its subject", async () => {
    fakeOrigin();
    const now = Date.now();
    const before = Math.floor(now / 1000);
    let member = 80_000_000;
    while (revocationShard(`m:${member}`, FIRST_LAYOUT) === 0) member++;
    const global = env.REVOCATIONS.get(env.REVOCATIONS.idFromName(FIRST_LAYOUT.name(0)));
    const legacyRequest = { members: [member], before, keepSeconds: 3630, now };
    const snapshot = await global.revoke(legacyRequest);
    expect(snapshot.shard).toBe(0);
    expect(snapshot.legacy, "holds a subject of another shard").toBe(true);
    expect(snapshot.exact, "values carry their millisecond").toBe(true);
    expect(Math.round(snapshot.members[member]! * 1000), "the end of the second sent").toBe(before * 1000 + 999);

    let published: RevocationSnapshot | null = null;
    await vi.waitFor(
      async () => {
        published = await env.TOKENS.get<RevocationSnapshot>(REVOCATIONS_KEY, "json");
        expect(published?.members[member]).toBe(snapshot.members[member]);
      },
      { timeout: 5000, interval: 200 },
    );
    const reader = location(
      { now },
      { ...env, TOKENS: staleKv(new Map([[REVOCATIONS_KEY, JSON.stringify(published)]])) },
    );
    await expectRevoked(
      await reader.request(
        "/grids",
        bearer(await signWithJose(fixedClaims({ memberEntityId: member, iat: before - 10 }))),
      ),
    );
  });

  it("a row its object stored in whole seconds (before instants were ms) is published as the end of that second", async () => {
    const second = Math.floor(Date.now() / 1000);
    const object = env.REVOCATIONS.get(env.REVOCATIONS.idFromName("seconds-row-test"));
    await runInDurableObject(object, async (_instance, state) => {
      state.storage.sql.exec(
        "INSERT INTO revocations (subject, before, expires_at) VALUES ('m:42', ?, ?)",
        second,
        (second + 3630) * 1000,
      );
    });
    const snapshot = await object.current(Date.now());
    expect(Math.round(snapshot.members["42"]! * 1000)).toBe(second * 1000 + 999);
  });

  it("a shard whose record is unreadable fails requests closed once the copy is too old, even when every other shard reads", async () => {
    const origin = fakeOrigin();
    const broken = REVOCATION_LAYOUT.key(REVOCATION_SHARDS - 1);
    const get = env.TOKENS.get.bind(env.TOKENS) as (keys: string[], options: unknown) => Promise<Map<string, unknown>>;
    const tokens = new Proxy(env.TOKENS, {
      get(target, property) {
        if (property === "get")
          return async (keys: string[], options: unknown) => {
            const records = await get(keys, options);
            records.set(broken, { v: 2, members: "everyone" });
            return records;
          };
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const far = location({ now: Date.now() }, { ...env, TOKENS: tokens });
    const response = await far.request("/grids", bearer(await signWithJose(fixedClaims())));
    expect(response.status).toBe(503);
    expect((await problem(response)).code).toBe("temporarily_unavailable");
    expect(origin, "never forwarded").toHaveLength(0);
  });
});
