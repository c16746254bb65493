// The sharded revocation record at the target scale, and a shard that cannot be read (a file of its own: KV caches reads for 30 s across the file).
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  REVOCATIONS_KEY,
  REVOCATION_SHARDS,
  revocationBucket,
  revocationShard,
  revocationShardKey,
  revocationShardName,
  type RevocationSnapshot,
} from "../src/revocation/record";
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
        expected.map((_, shard) => env.TOKENS.get<RevocationSnapshot>(revocationShardKey(shard), "json")),
      );
      records.forEach((record, shard) =>
        expect(Object.keys(record?.members ?? {}).length, `shard ${shard}`).toBe(expected[shard]),
      );
    },
    { timeout: 5000, interval: 200 },
  );
  return records;
}

describe("sharded access-token revocation", () => {
  it("at the target (≈ 18,000 live entries: 5 revocations/s kept 3,630 s) every shard stays named, under 64 KiB, with no bucket", async () => {
    fakeOrigin();
    const now = Date.now();
    const members = Array.from({ length: 18_000 }, (_, i) => 70_000_000 + i);
    const writer = location({ now });
    await writer.services.revocations.revoke({ accessTokenTtl: 3600, clockSkew: 30 }, { members }, now);

    const records = await publishedShards(members);
    const sizes = records.map((record) => new TextEncoder().encode(JSON.stringify(record)).byteLength);
    for (const [shard, record] of records.entries()) {
      expect(record, `shard ${shard}`).not.toBeNull();
      expect(record!.buckets, `shard ${shard} never merges into buckets at the target`).toBeUndefined();
      expect(record!.legacy, `shard ${shard} holds only its own subjects`).toBeUndefined();
      expect(sizes[shard], `shard ${shard}`).toBeLessThan(64 * 1024);
      for (const id of Object.keys(record!.members)) expect(revocationShard(`m:${id}`)).toBe(shard);
    }

    const iat = Math.floor(now / 1000) - 60;
    const reader = location({ now });
    const claims = (memberEntityId: number) => fixedClaims({ memberEntityId, iat });
    // Through the HTTP surface: the first request loads every shard; a revoked member is refused, another is not.
    await expectRevoked(await reader.request("/grids", bearer(await signWithJose(claims(members[17_999]!)))));
    expect((await reader.request("/grids", bearer(await signWithJose(claims(69_999_999))))).status).toBe(200);
    for (const id of members.filter((_, i) => i % 97 === 0))
      expect(reader.services.revocations.isRevoked(claims(id) as never), `member ${id}`).toBe(true);
    for (let id = 90_000_000; id < 90_000_500; id++)
      expect(reader.services.revocations.isRevoked(claims(id) as never), `member ${id}`).toBe(false);
    expect(
      reader.services.revocations.isRevoked(fixedClaims({ memberEntityId: members[0], iat: iat + 120 }) as never),
    ).toBe(false);
  }, 120_000);

  it("a record published before sharding (no shard field) keeps refusing every subject it names, in any shard", async () => {
    fakeOrigin();
    const now = Date.now();
    const before = Math.floor(now / 1000);
    const inShard = (shard: (s: number) => boolean, from: number) => {
      let id = from;
      while (!shard(revocationShard(`m:${id}`))) id++;
      return id;
    };
    const named = inShard((s) => s !== 0, 60_000_000);
    const merged = inShard((s) => s !== 0 && s !== revocationShard(`m:${named}`), named + 1);
    let stranger = merged + 1;
    while (
      revocationShard(`m:${stranger}`) === 0 ||
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
    while (revocationShard(`m:${member}`) === 0) member++;
    const global = env.REVOCATIONS.get(env.REVOCATIONS.idFromName(revocationShardName(0)));
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
    const broken = revocationShardKey(REVOCATION_SHARDS - 1);
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
