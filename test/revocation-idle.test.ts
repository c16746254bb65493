// An idle isolate re-reads the revocation record before using it (a file of its own: KV caches reads for 30 s across the file).
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MAX_NAMED_BYTES, REVOCATIONS_KEY, revocationBucket } from "../src/durable/revocations";
import { REVOCATIONS_MAX_AGE_MS, REVOCATIONS_REFRESH_MS } from "../src/tokens/revocations";
import { fakeOrigin, fixedClaims, signWithJose } from "./helpers";
import { bearer, expectRevoked, location, revocationPublished, type Clock } from "./locations";
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
    await location(clock).gateway.revocations.revoke(
      { accessTokenTtl: 3600, clockSkew: 30 },
      {
        members: [account.memberId],
      },
    );
    clock.now += REVOCATIONS_MAX_AGE_MS + 1000;
    await expectRevoked(await far.request("/grids", bearer(token)));
  });
});
