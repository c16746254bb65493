// POST /authenticate/refresh: storage layout, rotation, reuse detection, grace window, races, expiry, stale KV.
import { env } from "cloudflare:workers";
import { jwtVerify } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { fakeOrigin, gateway, login, problem } from "./helpers";
import { kvSnapshot, postRefresh, refreshOk, sha256Hex, storedRecord } from "./refresh-helpers";

const REFRESH_TOKEN = /^ggr_[A-Za-z0-9_-]{43}$/;
const GRACE_MS = 10_000;

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** RFC 6749 §5.2: a refused refresh token is 400 `invalid_grant`, no HTTP authentication challenge. */
async function expectInvalidGrant(response: Response): Promise<void> {
  expect(response.status).toBe(400);
  expect(response.headers.get("WWW-Authenticate")).toBeNull();
  expect(response.headers.get("Cache-Control")).toBe("no-store");
  expect((await problem(response)).code).toBe("invalid_grant");
}

describe("issuing and storing refresh tokens", () => {
  it("login returns an opaque 256-bit refresh token of which KV holds only the SHA-256", async () => {
    const before = Date.now();
    const body = await login("builder@acme.example");
    expect(body.refresh_token).toMatch(REFRESH_TOKEN);
    expect(body.refresh_token_expires_in).toBe(604_800);

    const hash = await sha256Hex(body.refresh_token);
    const record = await storedRecord(body.refresh_token);
    expect(record).toMatchObject({ v: 1, memberId: 2550, organisationId: 1 });
    expect(record!.familyId).toMatch(/^[0-9a-f-]{36}$/);
    expect(record!.expiresAt - record!.issuedAt).toBe(604_800_000);
    expect(record!.issuedAt).toBeGreaterThanOrEqual(before);
    expect(record!.usedAt).toBeUndefined();

    const listed = await env.TOKENS.list({ prefix: `refresh:${hash}` });
    expect(listed.keys).toHaveLength(1);
    expect(listed.keys[0]!.expiration).toBeGreaterThanOrEqual(Math.floor(before / 1000) + 604_800 - 5);
    const secret = body.refresh_token.slice(4);
    for (const [key, value] of Object.entries(await kvSnapshot())) {
      expect(key).not.toContain(secret);
      expect(value ?? "").not.toContain(secret);
    }
  });

  it("two logins give two different tokens in two different families", async () => {
    const [a, b] = [await login("viewer@acme.example"), await login("viewer@acme.example")];
    expect(a.refresh_token).not.toBe(b.refresh_token);
    expect((await storedRecord(a.refresh_token))!.familyId).not.toBe((await storedRecord(b.refresh_token))!.familyId);
  });
});

describe("rotation", () => {
  it("answers like /authenticate with a new access token and a rotated refresh token in the same family", async () => {
    const first = await login("architect@acme.example");
    const response = await postRefresh({ refresh_token: first.refresh_token });
    expect(response.status).toBe(200);
    expect(response.headers.get("Cache-Control")).toBe("no-store");
    const body = (await response.json()) as Record<string, any>;
    expect(Object.keys(body).sort()).toEqual([
      "access_token",
      "expires_in",
      "refresh_token",
      "refresh_token_expires_in",
      "scope",
      "token_type",
    ]);
    expect(body).toMatchObject({
      token_type: "Bearer",
      expires_in: 3600,
      refresh_token_expires_in: 604_800,
      scope: "architect",
    });
    expect(body.refresh_token).toMatch(REFRESH_TOKEN);
    expect(body.refresh_token).not.toBe(first.refresh_token);
    expect(body.access_token).not.toBe(first.access_token);
    const { payload } = await jwtVerify(body.access_token, new TextEncoder().encode(env.JWT_SECRET), {
      algorithms: ["HS256"],
    });
    expect(payload).toMatchObject({
      memberEntityId: "2549",
      memberEntityIdentifier: "o6q2is",
      organisationEntityIdentifier: "m7l9hw",
      scope: "architect",
    });

    const old = await storedRecord(first.refresh_token);
    const next = await storedRecord(body.refresh_token);
    expect(old!.usedAt).toBeTypeOf("number");
    expect(old!.successor.hash).toBe(await sha256Hex(body.refresh_token));
    expect(JSON.stringify(old)).not.toContain(body.refresh_token.slice(4));
    expect(next).toMatchObject({
      familyId: old!.familyId,
      familyCreatedAt: old!.familyCreatedAt,
      parent: await sha256Hex(first.refresh_token),
    });
    expect(next!.usedAt).toBeUndefined();
  });

  it("a chain of rotations keeps working, each new token once", async () => {
    let token = (await login("viewer@acme.example")).refresh_token as string;
    const seen = new Set([token]);
    for (let i = 0; i < 4; i++) {
      token = (await refreshOk(token)).refresh_token;
      expect(seen.has(token)).toBe(false);
      seen.add(token);
    }
  });
});

describe("reuse detection", () => {
  it("a rotated token presented after the grace window revokes the whole family, newest token included", async () => {
    const t0 = (await login("builder@acme.example")).refresh_token as string;
    const t1 = (await refreshOk(t0)).refresh_token as string;
    const t2 = (await refreshOk(t1)).refresh_token as string;
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.advanceTimersByTime(GRACE_MS + 1000);

    await expectInvalidGrant(await postRefresh({ refresh_token: t0 }));
    const familyId = (await storedRecord(t0))!.familyId;
    expect(await env.TOKENS.get(`refresh-family:${familyId}`, "json")).toMatchObject({
      reason: "reused",
      memberId: 2550,
    });
    await expectInvalidGrant(await postRefresh({ refresh_token: t2 }));
    await expectInvalidGrant(await postRefresh({ refresh_token: t1 }));
    expect((await storedRecord(t2))!.usedAt).toBeUndefined();
  });

  it("within the grace window the same successor is returned, and the family stays alive", async () => {
    const t0 = (await login("builder@acme.example")).refresh_token as string;
    const first = await refreshOk(t0);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.advanceTimersByTime(GRACE_MS - 2000);
    const retry = await refreshOk(t0);
    expect(retry.refresh_token).toBe(first.refresh_token);
    expect(retry.refresh_token_expires_in).toBeGreaterThan(604_800 - 10);
    expect(retry.refresh_token_expires_in).toBeLessThanOrEqual(604_800);
    expect(retry.access_token).not.toBe(first.access_token);
    expect(await env.TOKENS.get(`refresh-family:${(await storedRecord(t0))!.familyId}`)).toBeNull();

    const t2 = (await refreshOk(first.refresh_token)).refresh_token;
    expect(t2).toMatch(REFRESH_TOKEN);
    expect(t2).not.toBe(first.refresh_token);
  });

  it("parallel refreshes with one token all get the same single successor", async () => {
    const t0 = (await login("viewer@acme.example")).refresh_token as string;
    const familyId = (await storedRecord(t0))!.familyId;
    const responses = await Promise.all(Array.from({ length: 6 }, () => postRefresh({ refresh_token: t0 })));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const tokens = new Set(await Promise.all(responses.map(async (r) => ((await r.json()) as any).refresh_token)));
    expect(tokens.size).toBe(1);

    const family = Object.values(await kvSnapshot()).filter((value) => value?.includes(familyId));
    expect(family).toHaveLength(2);
    expect((await refreshOk([...tokens][0])).refresh_token).toMatch(REFRESH_TOKEN);
  });

  // Stricter since the family's Durable Object decides: a used token shown as unused by a stale KV
  // record can no longer rotate a second time (a fork); it is refused at once and ends the family.
  it("a stale KV record that shows a used token as unused cannot fork the family: reuse ends it at once", async () => {
    const t0 = (await login("architect@acme.example")).refresh_token as string;
    const t1 = (await refreshOk(t0)).refresh_token as string;
    const key = `refresh:${await sha256Hex(t0)}`;
    const {
      usedAt: _usedAt,
      successor: _successor,
      ...stale
    } = (await env.TOKENS.get(key, "json")) as Record<string, any>;
    await env.TOKENS.put(key, JSON.stringify(stale), { expirationTtl: 3600 });
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.advanceTimersByTime(GRACE_MS + 1000);
    await expectInvalidGrant(await postRefresh({ refresh_token: t0 }));

    expect(await env.TOKENS.get(`refresh-family:${stale.familyId}`, "json")).toMatchObject({ reason: "reused" });
    await expectInvalidGrant(await postRefresh({ refresh_token: t1 }));
  });
});

describe("expiry and token kinds", () => {
  it("a token past expiresAt is refused even while KV still holds it", async () => {
    const t0 = (await login("viewer@acme.example")).refresh_token as string;
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.advanceTimersByTime(604_800_000 + 1000);
    await expectInvalidGrant(await postRefresh({ refresh_token: t0 }));
    expect(await storedRecord(t0)).not.toBeNull();
  });

  it("an access token is never accepted as a refresh token, and nothing is stored", async () => {
    const { access_token } = await login("viewer@acme.example");
    const before = await kvSnapshot();
    await expectInvalidGrant(await postRefresh({ refresh_token: access_token }));
    expect(await kvSnapshot()).toEqual(before);
  });

  it("a refresh token is never accepted as a Bearer token", async () => {
    const seen = fakeOrigin();
    const { refresh_token } = await login("viewer@acme.example");
    const response = await gateway("/grids", { headers: { Authorization: `Bearer ${refresh_token}` } });
    expect(response.status).toBe(401);
    expect(response.headers.get("WWW-Authenticate")).toMatch(/^Bearer realm="api", error="invalid_token"/);
    expect((await problem(response)).code).toBe("invalid_token");
    expect(seen).toHaveLength(0);
  });

  it.each(["/authenticate/refresh", "/authenticate/revoke"])("only POST is allowed on %s", async (path) => {
    for (const method of ["GET", "PUT", "DELETE"]) {
      const response = await gateway(path, { method });
      expect(response.status).toBe(405);
      expect(response.headers.get("Allow")).toBe("POST");
      expect((await problem(response)).code).toBe("method_not_allowed");
    }
  });
});
