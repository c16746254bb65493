// An idle isolate re-reads the revocation record before using it (a file of its own: KV caches reads for 30 s across the file).
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { REVOCATION_LAYOUT } from "../src/revocation/record";
import { Logger } from "../src/log";
import { STORAGE_WAIT_MS } from "../src/storage/bounded";
import { REVOCATIONS_MAX_AGE_MS, REVOCATIONS_REFRESH_MS, RevocationList } from "../src/revocation/list";
import { bearer, fakeOrigin } from "./helpers";
import { expectRevoked, location, type Clock } from "./locations";
import { loginAccount, newAccount } from "./refresh-helpers";

afterEach(() => vi.restoreAllMocks());

describe("access-token revocation", () => {
  it("an idle isolate never uses a copy older than 30 s: its next request waits for one KV read", async () => {
    fakeOrigin();
    const clock: Clock = { now: Date.now() };
    const far = location(clock);
    const account = await newAccount();
    const { access_token: token } = await loginAccount(account);
    expect((await far.request("/grids", bearer(token))).status).toBe(200);
    clock.now = Date.now(); // the token was issued by the real clock
    await location(clock).services.revocations.revoke(
      { accessTokenTtl: 3600, clockSkew: 30 },
      {
        members: [account.memberId],
      },
      clock.now,
    );
    clock.now += REVOCATIONS_MAX_AGE_MS + 1000;
    await expectRevoked(await far.request("/grids", bearer(token)));
  });
});

/** Re-reads of the whole record a fake KV saw: each is one or more bulk reads, the first naming the first shard. */
const reReads = (get: ReturnType<typeof vi.fn>) =>
  get.mock.calls.filter(([keys]) => (keys as string[])[0] === REVOCATION_LAYOUT.key(0)).length;

describe("the revocation copy's re-read", () => {
  it("a request never awaits a re-read another request sent: when that one never answers, the next reads for itself", async () => {
    // The first re-read never answers, the second finds no record.
    const get = vi.fn((keys: string[]): Promise<Map<string, unknown>> =>
      reReads(get) === 1 ? new Promise(() => {}) : Promise.resolve(new Map(keys.map((key) => [key, null]))),
    );
    const kv = { get } as unknown as KVNamespace;
    const list = new RevocationList({ kv, objects: env.REVOCATIONS, now: () => 0 });
    const ctx = { waitUntil: () => undefined };
    const cancelled = list.ensureFresh(ctx, new Logger());
    expect(cancelled).toBeDefined();
    await list.ensureFresh(ctx, new Logger());
    expect(reReads(get)).toBe(2);
    expect(list.ensureFresh(ctx, new Logger()), "the copy is fresh").toBeUndefined();
  });

  it("one background re-read at a time; one that never answers (its request was cancelled) delays the next, never stops it", async () => {
    const get = vi.fn((): Promise<Map<string, unknown>> =>
      clock.now === 0 ? Promise.resolve(new Map()) : new Promise(() => {}),
    );
    const kv = { get } as unknown as KVNamespace;
    const clock = { now: 0 };
    const list = new RevocationList({ kv, objects: env.REVOCATIONS, now: () => clock.now });
    const ctx = { waitUntil: () => undefined };
    await list.ensureFresh(ctx, new Logger());
    clock.now = REVOCATIONS_REFRESH_MS;
    expect(list.ensureFresh(ctx, new Logger()), "a background re-read; the copy is still used").toBeUndefined();
    clock.now += STORAGE_WAIT_MS - 1;
    list.ensureFresh(ctx, new Logger());
    expect(reReads(get)).toBe(2);
    clock.now += 1;
    list.ensureFresh(ctx, new Logger());
    expect(reReads(get)).toBe(3);
  });
});
