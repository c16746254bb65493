// Dynamic-secret tokens naming organisations the gateway does not know: refused, and D1 is asked a bounded number of times.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createWorker } from "../src/worker";
import { createServices } from "../src/services";
import { MISS_BURST, MISS_REFILL_PER_SECOND } from "../src/dynamic-secrets/miss-budget";
import {
  GATEWAY,
  fakeOrigin,
  newArchitectOrganisation,
  now,
  problem,
  randomId,
  signWithJose,
  spyOnD1Statements,
} from "./helpers";

afterEach(() => vi.restoreAllMocks());

/** A fresh organisation with an active architect and one dynamic secret, created through the API. */
async function organisationWithSecret(): Promise<{ identifier: string; member: string; kid: string; secret: string }> {
  const { identifier, member, token } = await newArchitectOrganisation("enterprise", "f");
  const created = await createWorker().fetch(
    new Request(`${GATEWAY}/authenticate/secrets`, { method: "POST", headers: { Authorization: `Bearer ${token}` } }),
    env,
    createExecutionContext(),
  );
  expect(created.status).toBe(201);
  const { kid, secret } = (await created.json()) as { kid: string; secret: string };
  return { identifier, member, kid, secret };
}

function dynamicToken(organisation: string, member: string, secret: string, kid?: string): Promise<string> {
  const claims = {
    iat: now(),
    memberEntityIdentifier: member,
    organisationEntityIdentifier: organisation,
    scope: "organisation",
    secretType: "dynamic",
  };
  return signWithJose(claims, secret, kid ? { kid } : {});
}

/** A new isolate's gateway (fresh caches and miss budget) on a clock the test moves. */
function isolateWithClock() {
  const clock = { now: Date.now() };
  const gateway = createServices(env, { now: () => clock.now });
  const app = createWorker({ servicesFor: () => gateway });
  const get = async (token: string): Promise<Response> => {
    const ctx = createExecutionContext();
    const response = await app.fetch(
      new Request(`${GATEWAY}/grids`, { headers: { Authorization: `Bearer ${token}` } }),
      env,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    return response;
  };
  return { clock, get };
}

describe("tokens naming unknown organisations", () => {
  it("are refused with 401 while D1 is asked; past the isolate's miss budget shed with 503 and Retry-After", async () => {
    fakeOrigin();
    const real = await organisationWithSecret();
    const { clock, get } = isolateWithClock();
    const queries = spyOnD1Statements();
    const statuses: number[] = [];
    const flood = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const response = await get(await dynamicToken(randomId("x"), real.member, real.secret));
        statuses.push(response.status);
        if (response.status === 401) {
          expect(response.headers.get("WWW-Authenticate")).toContain('error="invalid_token"');
        } else {
          expect(response.status, "a shed look-up is a temporary failure, never a 401").toBe(503);
          expect((await problem(response)).code).toBe("temporarily_unavailable");
          expect(response.headers.get("Retry-After")).toBe("5");
        }
      }
    };

    await flood(4 * MISS_BURST);
    expect(statuses.filter((status) => status === 401).length, "the burst is looked up").toBeGreaterThan(0);
    expect(statuses.filter((status) => status === 503).length, "the rest is shed").toBeGreaterThan(0);
    expect(queries.mock.calls.length, "the burst").toBeLessThanOrEqual(MISS_BURST);
    expect(queries.mock.calls.length, "negatives are looked up while the budget lasts").toBeGreaterThan(0);

    queries.mockClear();
    clock.now += 20_000;
    await flood(4 * MISS_BURST);
    expect(queries.mock.calls.length, "20 s of refill").toBeLessThanOrEqual(20 * MISS_REFILL_PER_SECOND);

    const known = await dynamicToken(real.identifier, real.member, real.secret, real.kid);
    expect((await get(known)).status, "an organisation holding secrets is still served").toBe(200);
  });

  it("cache a known-empty organisation: asking again costs no D1 query", async () => {
    fakeOrigin();
    const real = await organisationWithSecret();
    const { get } = isolateWithClock();
    const empty = randomId("e");
    await env.DB.prepare(
      "INSERT INTO organisations (identifier, name, domain, plan) VALUES (?, 'Empty', ?, 'enterprise')",
    )
      .bind(empty, `${empty}.example`)
      .run();
    const token = await dynamicToken(empty, real.member, real.secret);
    expect((await get(token)).status).toBe(401);
    const queries = spyOnD1Statements();
    for (let i = 0; i < 20; i++) expect((await get(token)).status).toBe(401);
    expect(queries).not.toHaveBeenCalled();
    expect(await env.TOKENS.get(`dynsec:${empty}`, "json")).toMatchObject({ value: [] });
  });

  it("leave a known organisation answered from isolate memory, and no KV value lists organisations", async () => {
    fakeOrigin();
    const real = await organisationWithSecret();
    const { get } = isolateWithClock();
    const known = await dynamicToken(real.identifier, real.member, real.secret, real.kid);
    expect((await get(known)).status).toBe(200);
    await env.TOKENS.delete(`dynsec:${real.identifier}`);
    for (let i = 0; i < 2 * MISS_BURST; i++) await get(await dynamicToken(randomId("x"), real.member, real.secret));
    const reads = vi.spyOn(env.TOKENS, "get");
    expect((await get(known)).status).toBe(200);
    expect(reads.mock.calls.map(([key]) => key)).not.toContain(`dynsec:${real.identifier}`);
    expect(await env.TOKENS.get("dynsec-index:all")).toBeNull();
  });
});
