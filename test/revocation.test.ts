// Access-token revocation within 60 s with no I/O per proxied request: logout-everywhere, the size bound, fail-closed reads.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { REVOCATION_SHARDS } from "../src/revocation/record";
import { REVOCATIONS_REFRESH_MS } from "../src/revocation/list";
import { bearer, fakeOrigin, fixedClaims, signWithJose, spyOnD1Statements } from "./helpers";
import { expectRevoked, location, revocationPublished, type Clock } from "./locations";
import { loginAccount, newAccount } from "./refresh-helpers";

afterEach(() => vi.restoreAllMocks());

describe("access-token revocation", () => {
  it("logout-everywhere refuses the earlier access token at once here and within 60 s elsewhere, with no I/O per request before", async () => {
    fakeOrigin();
    const clock: Clock = { now: Date.now() };
    const near = location(clock);
    const far = location(clock);
    const account = await newAccount();
    const bystander = await newAccount();
    const { access_token: token } = await loginAccount(account);
    const { access_token: other } = await loginAccount(bystander);
    clock.now = Date.now(); // far loads its copy now, not when the clock was made (logins can take seconds under load)
    expect((await far.request("/grids", bearer(token))).status).toBe(200);
    expect((await far.request("/grids", bearer(other))).status).toBe(200);
    clock.now = Date.now(); // the tokens were issued by the real clock
    const revokedAt = clock.now;

    expect((await near.post("/authenticate/revoke", { all: true }, { Authorization: `Bearer ${token}` })).status).toBe(
      200,
    );
    await expectRevoked(await near.request("/grids", bearer(token)));
    expect((await near.request("/grids", bearer(other))).status, "other members are unaffected").toBe(200);
    await revocationPublished(account.memberId);

    const reads = vi.spyOn(env.TOKENS, "get");
    const prepares = spyOnD1Statements();
    clock.now = revokedAt + REVOCATIONS_REFRESH_MS - 1000;
    expect((await far.request("/grids", bearer(other))).status).toBe(200);
    expect(reads, "in memory: no KV read per request").not.toHaveBeenCalled();
    expect(prepares).not.toHaveBeenCalled();

    clock.now = revokedAt + REVOCATIONS_REFRESH_MS + 1000;
    await far.request("/grids", bearer(token)); // served from the old copy; starts the background re-read
    const keys = reads.mock.calls.map(([names]) => names as unknown as string[]);
    expect(keys.length, "bulk KV reads of ≤ 100 keys, in the background").toBe(Math.ceil(REVOCATION_SHARDS / 100));
    expect(keys.flat(), "of every shard").toHaveLength(REVOCATION_SHARDS);
    await expectRevoked(await far.request("/grids", bearer(token)));
    expect(clock.now - revokedAt).toBeLessThan(60_000);
    expect((await far.request("/grids", bearer(other))).status).toBe(200);

    // A token issued in the revocation's own second is refused too (fail closed): log in a second later.
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, Math.floor(revokedAt / 1000) * 1000 + 1050 - Date.now())),
    );
    const { access_token: fresh } = await loginAccount(account);
    clock.now = Date.now();
    expect((await near.request("/grids", bearer(fresh))).status, "a token issued after the revocation works").toBe(200);
  });

  it("fails closed when the record cannot be read and the copy is too old", async () => {
    fakeOrigin();
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const clock: Clock = { now: Date.now() };
    const broken = { ...env, TOKENS: { ...env.TOKENS, get: () => Promise.reject(new Error("KV is down")) } };
    const far = location(clock, broken as unknown as typeof env);
    const response = await far.request("/grids", bearer(await signWithJose(fixedClaims())));
    expect(response.status).toBe(503);
    expect(response.headers.get("Retry-After")).toBe("5");
    expect(errors).toHaveBeenCalled();
  });
});
