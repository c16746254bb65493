// The plan gate's copy at a location (src/policy/plan-location.ts): a new isolate starts warm from it without a D1
// read per organisation, keeps the 60 s bound, and a Cache API that fails, hangs or answers garbage only costs D1 reads.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createWorker } from "../src/worker";
import { createServices } from "../src/services";
import { GATEWAY, fakeOrigin, fixedClaims, newOrganisation, problem, signWithJose } from "./helpers";
import { faultSwitch, faultyD1, type Fault, type FaultSwitch } from "./fault-fakes";

afterEach(() => vi.restoreAllMocks());

/** A location: its own Cache, and the clock its isolates read. */
async function newLocation() {
  return { cache: await caches.open(`plan-${crypto.randomUUID()}`), start: Date.now() };
}

type Location = Awaited<ReturnType<typeof newLocation>>;

/** One isolate at `location` over a D1 that records its statements (and fails while `faults` says so). */
function isolate(location: Location, cache: Cache = location.cache, faults: FaultSwitch = faultSwitch()) {
  const queries: string[] = [];
  const faulty = faultyD1(faults);
  const db = {
    ...faulty,
    prepare: (sql: string) => {
      queries.push(sql);
      return faulty.prepare(sql);
    },
  } as unknown as D1Database;
  const bindings = { ...env, DB: db };
  const clock = { now: location.start };
  const gateway = createServices(bindings, { now: () => clock.now, locationCache: cache, storageWaitMs: 1000 });
  const app = createWorker({ servicesFor: () => gateway });
  /** `GET /grids` for `organisation` at `at` ms after the location's start, background work awaited. */
  const get = async (organisation: string, at: number): Promise<Response> => {
    clock.now = location.start + at;
    const claims = fixedClaims({
      organisationEntityIdentifier: organisation,
      exp: Math.floor(location.start / 1000) + 3600,
    });
    const ctx = createExecutionContext();
    const request = new Request(`${GATEWAY}/grids`, {
      headers: { Authorization: `Bearer ${await signWithJose(claims)}` },
    });
    const response = await app.fetch(request, bindings, ctx);
    await waitOnExecutionContext(ctx);
    return response;
  };
  const planQueries = () => queries.filter((sql) => sql.includes('"organisations"')).length;
  const feedQueries = () => queries.filter((sql) => sql.includes("organisation_tombstones")).length;
  return { get, planQueries, feedQueries };
}

/** A location whose one isolate served `organisations` and polled the feed once since (so the window is fresh). */
async function warmLocation(organisations: string[]) {
  const location = await newLocation();
  const first = isolate(location);
  for (const organisation of organisations) expect((await first.get(organisation, 0)).status).toBeLessThan(500);
  expect((await first.get(organisations[0]!, 26_000)).status).toBeLessThan(500);
  expect(first.feedQueries(), "its background poll read D1 and shared the window").toBe(1);
  return { location, first };
}

describe("a new isolate at a location", () => {
  it("answers the organisations the location served without one D1 query", async () => {
    fakeOrigin();
    const organisations = [
      await newOrganisation("professional", "l"),
      await newOrganisation("professional", "l"),
      await newOrganisation("free", "l"),
    ];
    const { location } = await warmLocation(organisations);
    const next = isolate(location);
    expect((await next.get(organisations[0]!, 27_000)).status).toBe(200);
    expect((await next.get(organisations[1]!, 27_000)).status).toBe(200);
    expect((await next.get(organisations[2]!, 27_000)).status).toBe(403);
    expect(next.planQueries(), "no D1 query at all").toBe(0);
  });

  it("applies a change made after the location's read, from the location's window", async () => {
    fakeOrigin();
    const location = await newLocation();
    const first = isolate(location);
    const organisation = await newOrganisation("professional", "l");
    expect((await first.get(organisation, 0)).status).toBe(200);
    await env.DB.prepare("UPDATE organisations SET plan = 'free' WHERE identifier = ?").bind(organisation).run();
    expect((await first.get(organisation, 26_000)).status, "served while the poll runs").toBe(200);

    const next = isolate(location);
    expect((await next.get(organisation, 27_000)).status, "the location read it before the change").toBe(403);
    expect(next.planQueries()).toBe(0);
  });

  it("takes a newer window another isolate read instead of polling D1", async () => {
    fakeOrigin();
    const organisation = await newOrganisation("professional", "l");
    const location = await newLocation();
    const [one, two] = [isolate(location), isolate(location)];
    expect((await one.get(organisation, 0)).status).toBe(200);
    expect((await two.get(organisation, 0)).status).toBe(200);
    expect((await one.get(organisation, 26_000)).status).toBe(200);
    expect((await two.get(organisation, 27_000)).status).toBe(200);
    expect(one.feedQueries()).toBe(1);
    expect(two.feedQueries(), "the location's window answered its poll").toBe(0);
  });

  it("does not start from a window older than 60 s: it reads D1", async () => {
    fakeOrigin();
    const organisation = await newOrganisation("professional", "l");
    const { location } = await warmLocation([organisation]);
    const late = isolate(location);
    expect((await late.get(organisation, 26_000 + 60_000)).status).toBe(200);
    expect(late.planQueries(), "its own read").toBe(1);
  });
});

/** A Cache whose calls throw, hang, or (reads) answer something that is not the copy's. */
function faultyCache(fault: Fault, real: Cache): Cache & { calls: number } {
  const cache = {
    calls: 0,
    match: (key: RequestInfo) => {
      cache.calls++;
      if (fault === "throws") return Promise.reject(new Error("injected failure: cache.match"));
      if (fault === "hangs") return new Promise<never>(() => {});
      return real.match(key).then((hit) => hit && new Response('{"v":9,"garbage":true}'));
    },
    put: (key: RequestInfo, response: Response) => {
      cache.calls++;
      if (fault === "throws") return Promise.reject(new Error("injected failure: cache.put"));
      if (fault === "hangs") return new Promise<never>(() => {});
      return real.put(key, response);
    },
    delete: () => Promise.resolve(false),
  };
  return cache as unknown as Cache & { calls: number };
}

describe("the location's copy failing", () => {
  it.each(["throws", "hangs", "garbage"] as const)(
    "a Cache API that %s only costs D1 reads: answers as D1 says, never a 403 or 503 for it, logged once",
    async (fault) => {
      fakeOrigin();
      const warnings = vi.spyOn(console, "warn").mockImplementation(() => {});
      const organisation = await newOrganisation("professional", "l");
      const { location } = await warmLocation([organisation]);
      const cache = faultyCache(fault, location.cache);
      const next = isolate(location, cache);
      expect((await next.get(organisation, 27_000)).status).toBe(200);
      expect((await next.get(organisation, 54_000)).status).toBe(200);
      expect(cache.calls).toBeGreaterThan(0);
      expect(next.planQueries(), "D1 answered instead").toBeGreaterThan(0);
      const lines = warnings.mock.calls.map(([line]) => JSON.parse(String(line)) as Record<string, string>);
      const failures = lines.filter((line) => line.event === "plan_location_copy_failed");
      expect(
        failures.filter((line) => line.call === "match"),
        "once per episode",
      ).toHaveLength(1);
    },
  );

  it("with D1 failing too, an organisation the isolate cannot vouch for gets 503, never 403", async () => {
    fakeOrigin();
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const organisation = await newOrganisation("professional", "l");
    const { location } = await warmLocation([organisation]);
    const next = isolate(location, faultyCache("throws", location.cache), faultSwitch("throws"));
    const response = await next.get(organisation, 27_000);
    expect(response.status).toBe(503);
    expect((await problem(response)).code).toBe("temporarily_unavailable");
  });
});
