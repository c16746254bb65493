// The size bound of the published revocation record (a file of its own: KV caches reads for 30 s across the file).
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MAX_NAMED_BYTES, REVOCATIONS_KEY, revocationBucket, revocationShard } from "../src/revocation/record";
import { bearer, fakeOrigin, fixedClaims, signWithJose } from "./helpers";
import { expectRevoked, location } from "./locations";

afterEach(() => vi.restoreAllMocks());

describe("access-token revocation", () => {
  it(`beyond ${MAX_NAMED_BYTES / 1024} KiB of named entries, the oldest are merged into buckets: under 64 KiB, closed for their bucket, never open`, async () => {
    fakeOrigin();
    const object = env.REVOCATIONS.get(env.REVOCATIONS.idFromName("global"));
    const now = Date.now();
    const oldest = 900_000_001;
    // Shard 0 (the unsharded record's object) holding any subjects: what it published before sharding.
    await object.revoke({ shard: 0, members: [oldest], before: Math.floor(now / 1000) - 100, keepSeconds: 3630, now });
    const many = Array.from({ length: 2000 }, (_, i) => 800_000_000 + i);
    const snapshot = await object.revoke({
      shard: 0,
      members: many,
      before: Math.floor(now / 1000),
      keepSeconds: 3630,
      now,
    });
    expect(JSON.stringify(snapshot).length).toBeLessThan(64 * 1024);
    expect(Object.keys(snapshot.members).length).toBeLessThan(many.length);
    expect(snapshot.members[String(oldest)]).toBeUndefined();
    expect(snapshot.legacy, "holds subjects of other shards: readers check it for every subject").toBe(true);
    const bucket = revocationBucket(`m:${oldest}`);
    expect(snapshot.buckets![String(bucket)]).toBeGreaterThanOrEqual(Math.floor(now / 1000) - 100);
    await vi.waitFor(
      async () =>
        expect(await env.TOKENS.get(REVOCATIONS_KEY, "json")).toMatchObject({
          members: snapshot.members,
          buckets: snapshot.buckets,
        }),
      {
        timeout: 3000,
      },
    );

    let neighbour = 1;
    while (revocationBucket(`m:${neighbour}`) !== bucket || many.includes(neighbour)) neighbour++;
    let stranger = 1;
    while (String(revocationBucket(`m:${stranger}`)) in snapshot.buckets! || many.includes(stranger)) stranger++;
    let organisation = 0;
    while (String(revocationBucket(`o:org${organisation}`)) in snapshot.buckets!) organisation++;
    const at = location({ now });
    const iat = Math.floor(now / 1000) - 200;
    // Through the HTTP surface: the merged member is refused (this also loads the record into `at`).
    await expectRevoked(
      await at.request("/grids", bearer(await signWithJose(fixedClaims({ memberEntityId: oldest, iat })))),
    );
    // The loaded copy, member by member (an organisation outside every populated bucket).
    const claims = (memberEntityId: number, issuedAt = iat) =>
      fixedClaims({ memberEntityId, iat: issuedAt, organisationEntityIdentifier: `org${organisation}` }) as never;
    expect(at.services.revocations.isRevoked(claims(oldest))).toBe(true);
    const foreign = Number(Object.keys(snapshot.members).find((id) => revocationShard(`m:${id}`) !== 0));
    expect(at.services.revocations.isRevoked(claims(foreign)), "a named entry of another shard, kept in shard 0").toBe(
      true,
    );
    expect(at.services.revocations.isRevoked(claims(neighbour)), "same bucket: closed").toBe(true);
    expect(at.services.revocations.isRevoked(claims(stranger)), "another bucket: open").toBe(false);
    const bucketTime = snapshot.buckets![String(bucket)]!;
    expect(at.services.revocations.isRevoked(claims(neighbour, bucketTime + 1)), "issued after the bucket's time").toBe(
      false,
    );
  }, 60_000);
});
