// The plan gate's organisation change feed (src/policy/plan.ts): direct D1 changes honoured within 60 s, one feed
// query per poll interval whatever the number of organisations, an overflowing feed, and D1 failing.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createWorker } from "../src/worker";
import { createServices } from "../src/services";
import { PlanGate } from "../src/policy/plan";
import { fakeOrigin, fixedClaims, GATEWAY, newOrganisation, problem, signWithJose } from "./helpers";

afterEach(() => vi.restoreAllMocks());

/** A prepared statement that never answers. */
const hangingStatement = {
  bind: () => hangingStatement,
  all: () => new Promise(() => {}),
  raw: () => new Promise(() => {}),
  first: () => new Promise(() => {}),
  run: () => new Promise(() => {}),
};

/** D1 behind a proxy that counts prepared statements and can be switched off (throwing) or made to hang (or its next statement only). */
function switchableD1() {
  const d1 = { queries: [] as string[], down: false, hanging: false, hangNext: false };
  const binding = new Proxy(env.DB, {
    get(target, property) {
      if (property === "prepare")
        return (query: string) => {
          if (d1.down) throw new Error("D1 is down");
          if (d1.hanging || d1.hangNext) {
            d1.hangNext = false;
            return hangingStatement;
          }
          d1.queries.push(query);
          return target.prepare(query);
        };
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { d1, binding };
}

/** One gateway (one isolate) on an injected clock over a counting, switchable D1. */
function isolate() {
  const { d1, binding } = switchableD1();
  const bindings = { ...env, DB: binding };
  const clock = { now: Date.now() };
  const start = clock.now;
  const gateway = createServices(bindings, { now: () => clock.now });
  // The plan gate's D1 time-out, shortened so a hanging D1 costs the tests 50 ms, not 5 s.
  Object.assign(gateway, {
    plans: new PlanGate({
      source: gateway,
      db: gateway.db,
      now: () => clock.now,
      logger: gateway.logger,
      d1TimeoutMs: 50,
    }),
  });
  const app = createWorker({ servicesFor: () => gateway });
  const tokens = new Map<string, string>();
  /** `GET /grids` with a fixed token of `organisation`, background work awaited, at `at` ms after the start. */
  const get = async (organisation: string, at: number): Promise<Response> => {
    clock.now = start + at;
    let token = tokens.get(organisation);
    if (!token) {
      token = await signWithJose(
        fixedClaims({ organisationEntityIdentifier: organisation, exp: Math.floor(start / 1000) + 3600 }),
      );
      tokens.set(organisation, token);
    }
    const ctx = createExecutionContext();
    const request = new Request(`${GATEWAY}/grids`, { headers: { Authorization: `Bearer ${token}` } });
    const response = await app.fetch(request, bindings, ctx);
    await waitOnExecutionContext(ctx);
    return response;
  };
  const feedQueries = () => d1.queries.filter((query) => query.includes("organisation_tombstones")).length;
  const stateReads = () =>
    d1.queries.filter((query) => query.includes("json_array") && !query.includes("json_each")).length;
  const batchReads = () => d1.queries.filter((query) => query.includes("json_each")).length;
  return { d1, get, feedQueries, stateReads, batchReads };
}

function sql(query: string, ...values: unknown[]) {
  return env.DB.prepare(query)
    .bind(...values)
    .run();
}

describe("the organisation change feed", () => {
  it("honours a direct D1 plan change at the next poll, without re-reading the organisation", async () => {
    fakeOrigin();
    const { get, feedQueries, stateReads } = isolate();
    const organisation = await newOrganisation("professional", "f");
    expect((await get(organisation, 0)).status).toBe(200);
    await sql("UPDATE organisations SET plan = 'free' WHERE identifier = ?", organisation);

    expect((await get(organisation, 20_000)).status, "before the first poll is due").toBe(200);
    expect((await get(organisation, 26_500)).status, "served while the poll runs in the background").toBe(200);
    expect((await get(organisation, 27_000)).status, "the poll brought the change").toBe(403);
    expect(stateReads(), "one read of the organisation, its first sighting").toBe(1);
    expect(feedQueries()).toBe(1);
  });

  it("honours a suspension, a deletion and a renamed identifier within 60 s", async () => {
    fakeOrigin();
    const { get } = isolate();
    const [suspended, deleted, renamed] = [
      await newOrganisation("professional", "f"),
      await newOrganisation("professional", "f"),
      await newOrganisation("professional", "f"),
    ];
    for (const organisation of [suspended, deleted, renamed]) expect((await get(organisation, 0)).status).toBe(200);
    await sql("UPDATE organisations SET status = 'suspended' WHERE identifier = ?", suspended);
    await sql("DELETE FROM organisations WHERE identifier = ?", deleted);
    await sql("UPDATE organisations SET identifier = ? WHERE identifier = ?", `${renamed}x`, renamed);
    const tombstones = await env.DB.prepare("SELECT identifier FROM organisation_tombstones WHERE identifier IN (?, ?)")
      .bind(deleted, renamed)
      .all();
    expect(tombstones.results.map((row) => row.identifier).sort()).toEqual([deleted, renamed].sort());

    expect((await get(suspended, 30_000)).status, "served while the poll runs in the background").toBe(200);
    for (const organisation of [suspended, deleted, renamed]) {
      expect((await get(organisation, 31_000)).status, `${organisation} after the poll`).toBe(403);
    }
    expect((await get(`${renamed}x`, 31_000)).status, "the new identifier").toBe(200);
  });

  it("honours within 60 s an organisation that INSERT OR REPLACE replaced under a new identifier", async () => {
    fakeOrigin();
    const { get } = isolate();
    const [byId, byDomain] = [await newOrganisation("professional", "f"), await newOrganisation("professional", "f")];
    for (const organisation of [byId, byDomain]) expect((await get(organisation, 0)).status).toBe(200);
    await sql(
      "INSERT OR REPLACE INTO organisations (id, identifier, name, domain, plan) SELECT id, ?, 'Feed', ?, 'professional' FROM organisations WHERE identifier = ?",
      `${byId}x`,
      `${byId}x.example`,
      byId,
    );
    await sql(
      "INSERT OR REPLACE INTO organisations (identifier, name, domain, plan) VALUES (?, 'Feed', ?, 'professional')",
      `${byDomain}x`,
      `${byDomain}.example`,
    );

    expect((await get(byId, 30_000)).status, "served while the poll runs in the background").toBe(200);
    for (const organisation of [byId, byDomain]) {
      expect((await get(organisation, 31_000)).status, `${organisation} after the poll`).toBe(403);
      expect((await get(`${organisation}x`, 31_000)).status, "its replacement").toBe(200);
    }
  });

  it("keeps serving an organisation that an INSERT OR IGNORE or a failed INSERT collided with", async () => {
    fakeOrigin();
    const { get } = isolate();
    const [ignored, failed] = [await newOrganisation("professional", "f"), await newOrganisation("professional", "f")];
    for (const organisation of [ignored, failed]) expect((await get(organisation, 0)).status).toBe(200);
    await sql(
      "INSERT OR IGNORE INTO organisations (identifier, name, domain, plan) VALUES (?, 'Feed', ?, 'free')",
      `${ignored}x`,
      `${ignored}.example`,
    );
    await expect(
      sql(
        "INSERT INTO organisations (identifier, name, domain, plan) VALUES (?, 'Feed', ?, 'free')",
        `${failed}x`,
        `${failed}.example`,
      ),
    ).rejects.toThrow(/UNIQUE/);
    const tombstones = await env.DB.prepare("SELECT identifier FROM organisation_tombstones WHERE identifier IN (?, ?)")
      .bind(ignored, failed)
      .all();
    expect(
      tombstones.results.map((row) => row.identifier),
      "the ignored insert's, not the failed one's",
    ).toEqual([ignored]);

    expect((await get(ignored, 30_000)).status, "served while the poll runs in the background").toBe(200);
    for (const organisation of [ignored, failed]) {
      expect((await get(organisation, 31_000)).status, `${organisation} after the poll`).toBe(200);
    }
  });

  it("makes one feed query per poll interval whatever the number of organisations served", async () => {
    fakeOrigin();
    const { get, feedQueries, stateReads } = isolate();
    const organisations: string[] = [];
    for (let index = 0; index < 50; index++) organisations.push(await newOrganisation("professional", "f"));
    for (const organisation of organisations) expect((await get(organisation, 0)).status).toBe(200);
    expect(stateReads(), "first sightings").toBe(50);
    const feedBefore = feedQueries();

    for (let interval = 1; interval <= 4; interval++) {
      for (const organisation of organisations) {
        expect((await get(organisation, interval * 25_000)).status).toBe(200);
      }
    }
    expect(stateReads(), "no organisation re-read in 100 s").toBe(50);
    expect(feedQueries() - feedBefore, "one feed query per 25 s").toBe(4);
  }, 30_000);

  it("waits for a poll when the feed is 60 s old, and then serves what it brought", async () => {
    fakeOrigin();
    const { get, feedQueries } = isolate();
    const organisation = await newOrganisation("professional", "f");
    expect((await get(organisation, 0)).status).toBe(200);
    await sql("UPDATE organisations SET plan = 'free' WHERE identifier = ?", organisation);
    expect((await get(organisation, 60_000)).status, "the request itself polled").toBe(403);
    expect(feedQueries()).toBe(1);
  });
});

describe("the safety net", () => {
  it("re-reads an organisation within the hour after its read, in the background, whatever the feed says", async () => {
    fakeOrigin();
    const { get, stateReads, batchReads } = isolate();
    const organisation = await newOrganisation("professional", "f");
    for (let at = 0; at < 55 * 60_000; at += 59_000) expect((await get(organisation, at)).status).toBe(200);
    expect(stateReads(), "the feed vouched for it for 55 minutes").toBe(1);
    expect(batchReads()).toBe(0);
    for (let at = 55 * 60_000; at < 60 * 60_000; at += 59_000) expect((await get(organisation, at)).status).toBe(200);
    expect(batchReads(), "re-read with the other states due, in the background of a poll").toBe(1);
    expect(stateReads(), "never on a request's path").toBe(1);
  }, 60_000);

  it("re-reads it on a request once its read is an hour old when no background re-read could run", async () => {
    fakeOrigin();
    const { get, stateReads } = isolate();
    const organisation = await newOrganisation("professional", "f");
    expect((await get(organisation, 0)).status).toBe(200);
    expect((await get(organisation, 3_600_000)).status).toBe(200);
    expect(stateReads()).toBe(2);
  });
});

describe("the plan gate when D1 fails", () => {
  it("serves the last known state for 5 minutes past the 60 s bound, then 503; 503 at once for an unseen organisation", async () => {
    fakeOrigin();
    const warnings = vi.spyOn(console, "warn").mockImplementation(() => {});
    const infos = vi.spyOn(console, "log").mockImplementation(() => {});
    const { d1, get } = isolate();
    const [known, refused, unseen] = [
      await newOrganisation("professional", "f"),
      await newOrganisation("free", "f"),
      await newOrganisation("professional", "f"),
    ];
    expect((await get(known, 0)).status).toBe(200);
    expect((await get(refused, 0)).status).toBe(403);

    d1.down = true;
    for (const at of [30_000, 61_000, 120_000, 359_000]) {
      expect((await get(known, at)).status, `${at} ms: last known state`).toBe(200);
      expect((await get(refused, at)).status, `${at} ms: last known refusal`).toBe(403);
    }
    const unseenAnswer = await get(unseen, 61_000);
    expect(unseenAnswer.status, "never read: nothing to fall back on").toBe(503);
    expect(unseenAnswer.headers.get("Retry-After")).toBe("5");
    expect((await problem(unseenAnswer)).code).toBe("temporarily_unavailable");

    for (const organisation of [known, refused]) {
      const past = await get(organisation, 361_000);
      expect(past.status, "60 s + 5 min after the last successful read").toBe(503);
      expect((await problem(past)).code).toBe("temporarily_unavailable");
    }
    const episodes = warnings.mock.calls.filter(([line]) => String(line).includes('"plan_store_unavailable"'));
    expect(episodes, "logged once per failure episode, not per request").toHaveLength(1);

    d1.down = false;
    expect((await get(known, 400_000)).status).toBe(200);
    expect((await get(unseen, 400_000)).status).toBe(200);
    const recoveries = infos.mock.calls.filter(([line]) => String(line).includes('"plan_store_recovered"'));
    expect(recoveries).toHaveLength(1);
  });
});

describe("the plan gate when D1 hangs", () => {
  it("gives up on a read after its time-out: the last known state within the bound, 503 for an unseen organisation", async () => {
    fakeOrigin();
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const { d1, get } = isolate();
    const [known, unseen] = [await newOrganisation("professional", "f"), await newOrganisation("professional", "f")];
    expect((await get(known, 0)).status).toBe(200);

    d1.hanging = true;
    expect((await get(known, 61_000)).status, "the poll timed out; last known state").toBe(200);
    expect((await get(unseen, 61_000)).status, "its read timed out").toBe(503);
    expect((await get(known, 361_000)).status).toBe(503);

    d1.hanging = false;
    expect((await get(known, 370_000)).status, "no hung poll left behind").toBe(200);
  });
});

describe("a busy feed", () => {
  it("never makes a request await another request's read: when the first read of an organisation hangs, a concurrent request reads it itself", async () => {
    fakeOrigin();
    const { d1, get, stateReads } = isolate();
    const organisation = await newOrganisation("professional", "f");
    d1.hangNext = true;
    const statuses = await Promise.all([get(organisation, 0), get(organisation, 0)]).then((responses) =>
      responses.map((response) => response.status).sort(),
    );
    expect(statuses, "the other request's own read answers, and the hung one's time-out finds its state").toEqual([
      200, 200,
    ]);
    expect(d1.hangNext).toBe(false);
    expect(stateReads(), "one read answered, one hung").toBe(1);
  });

  it("reads more than one page of changes in one poll", async () => {
    fakeOrigin();
    const { get, feedQueries, stateReads } = isolate();
    const organisation = await newOrganisation("professional", "f");
    expect((await get(organisation, 0)).status).toBe(200);
    const stampedBefore = Date.now() - 5_000;
    const inserts = Array.from({ length: 600 }, (_, index) =>
      env.DB.prepare("INSERT INTO organisations (identifier, name, domain, plan) VALUES (?, 'Busy', ?, 'free')").bind(
        `busy${index}`,
        `busy${index}.example`,
      ),
    );
    const stamps = Array.from({ length: 600 }, (_, index) =>
      env.DB.prepare("UPDATE organisations SET updated_at = ? WHERE identifier = ?").bind(
        stampedBefore + index,
        `busy${index}`,
      ),
    );
    await env.DB.batch([...inserts, ...stamps]);
    await sql("UPDATE organisations SET plan = 'free' WHERE identifier = ?", organisation);

    expect((await get(organisation, 26_000)).status, "served while the poll runs").toBe(200);
    expect((await get(organisation, 27_000)).status, "the change was on the poll's second page").toBe(403);
    expect(feedQueries(), "two pages").toBe(2);
    expect(stateReads()).toBe(1);
  });

  it("stops vouching for cached states when one poll cannot read every change; each is re-read when stale", async () => {
    fakeOrigin();
    const warnings = vi.spyOn(console, "warn").mockImplementation(() => {});
    const { get, stateReads } = isolate();
    const organisation = await newOrganisation("professional", "f");
    expect((await get(organisation, 0)).status).toBe(200);
    await sql("UPDATE organisations SET plan = 'free' WHERE identifier LIKE 'busy%' OR identifier = ?", organisation);

    expect((await get(organisation, 26_000)).status, "its own read is 26 s old; the poll overflows").toBe(200);
    expect(warnings.mock.calls.filter(([line]) => String(line).includes('"plan_feed_overflow"'))).toHaveLength(1);
    expect((await get(organisation, 55_000)).status, "its own read is still < 60 s old").toBe(200);
    expect(stateReads()).toBe(1);
    expect((await get(organisation, 61_000)).status, "re-read on its own").toBe(403);
    expect(stateReads()).toBe(2);
  });
});
