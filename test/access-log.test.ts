// The access log through the HTTP surface: one JSON line per request the gateway refused or failed (both ways in),
// every 5xx of the origin, a sample of the rest, and at most ACCESS_LINES_PER_SECOND lines a second per isolate.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ACCESS_LINES_PER_SECOND } from "../src/access-log";
import { bearer, fakeOrigin, fixedClaims, gateway, signWithJose } from "./helpers";
import { location, type Clock } from "./locations";

afterEach(() => vi.restoreAllMocks());

/** Every JSON line written to the console from now on, whatever its level. */
function consoleLines(): () => Record<string, unknown>[] {
  const spies = (["log", "warn", "error"] as const).map((level) =>
    vi.spyOn(console, level).mockImplementation(() => {}),
  );
  return () =>
    spies.flatMap((spy) =>
      spy.mock.calls.map(([line]) => {
        try {
          return JSON.parse(String(line)) as Record<string, unknown>;
        } catch {
          return { text: String(line) };
        }
      }),
    );
}

function accessLines(lines: Record<string, unknown>[]): Record<string, unknown>[] {
  return lines.filter((line) => line.event === "access");
}

/** A gateway on `clock` whose sampling draw is `draw()`, under `ACCESS_LOG_SAMPLE_RATE` = `rate`. */
function sampled(clock: Clock, draw: () => number, rate?: string) {
  return location(clock, rate === undefined ? env : { ...env, ACCESS_LOG_SAMPLE_RATE: rate }, { random: draw });
}

describe("the access log", () => {
  it("writes exactly one line for a refused proxied request, found by its X-Request-Id: status, code, route, no path", async () => {
    fakeOrigin();
    const lines = consoleLines();
    const response = await gateway("/grids/12?secret-query=1");
    expect(response.status).toBe(401);
    const requestId = response.headers.get("X-Request-Id")!;
    const mine = lines().filter((line) => JSON.stringify(line).includes(requestId));
    expect(mine).toEqual([
      {
        level: "info",
        event: "access",
        request_id: requestId,
        trace_id: expect.stringMatching(/^[0-9a-f]{32}$/),
        method: "GET",
        route: "proxied",
        status: 401,
        code: "missing_token",
        duration_ms: expect.any(Number),
      },
    ]);
    expect(JSON.stringify(mine)).not.toContain("grids");
  });

  it("names the organisation and member of a verified token, and the colo", async () => {
    fakeOrigin();
    const lines = consoleLines();
    const here = location({ now: Date.now() });
    const token = await signWithJose(fixedClaims({ organisationEntityIdentifier: "f4r5t6" }));
    const response = await here.request("/grids", { ...bearer(token), cf: { colo: "AMS" } } as RequestInit);
    expect(response.status).toBe(403);
    expect(accessLines(lines())).toEqual([
      expect.objectContaining({
        request_id: response.headers.get("X-Request-Id"),
        status: 403,
        code: "plan_not_eligible",
        organisation: "f4r5t6",
        member: "o6q2is",
        colo: "AMS",
      }),
    ]);
  });

  it("logs the gateway's own routes' refusals, and every 5xx of the origin at level error, without a code", async () => {
    fakeOrigin(() => new Response("down", { status: 503 }));
    const lines = consoleLines();
    const here = sampled({ now: Date.now() }, () => 0.99);
    const login = await here.post("/authenticate", { email: "nobody@acme.example", password: "wrong-password" });
    expect(login.status).toBe(401);
    const token = await signWithJose(fixedClaims());
    const failed = await here.request("/grids", bearer(token));
    expect(failed.status).toBe(503);
    expect(accessLines(lines())).toEqual([
      expect.objectContaining({
        level: "info",
        route: "login",
        method: "POST",
        status: 401,
        code: "invalid_credentials",
      }),
      expect.objectContaining({ level: "error", route: "proxied", status: 503, organisation: "m7l9hw" }),
    ]);
    expect(accessLines(lines())[1]).not.toHaveProperty("code");
  });

  it("samples the rest at ACCESS_LOG_SAMPLE_RATE (default 0.01), marked sampled", async () => {
    fakeOrigin((request) =>
      new URL(request.url).pathname.endsWith("/missing") ? new Response("no", { status: 404 }) : Response.json({}),
    );
    const token = await signWithJose(fixedClaims());
    const draws = [0.5, 0.0099, 0.01];
    const lines = consoleLines();
    const here = sampled({ now: Date.now() }, () => draws.shift()!);
    const answers = [
      await here.request("/grids", bearer(token)),
      await here.request("/grids/missing", bearer(token)),
      await here.request("/health"),
    ];
    expect(answers.map((response) => response.status)).toEqual([200, 404, 200]);
    expect(accessLines(lines())).toEqual([
      expect.objectContaining({ request_id: answers[1]!.headers.get("X-Request-Id"), status: 404, sampled: true }),
    ]);

    const never = sampled({ now: Date.now() }, () => 0, "0");
    const always = sampled({ now: Date.now() }, () => 0.999, "1");
    await never.request("/health");
    await always.request("/health");
    expect(accessLines(lines()).map((line) => line.route)).toEqual(["proxied", "other"]);
  });

  it(`writes at most ${ACCESS_LINES_PER_SECOND} lines a second per isolate; the next line says how many it dropped`, async () => {
    const lines = consoleLines();
    const clock = { now: Date.now() };
    const here = sampled(clock, () => 0.99);
    for (let i = 0; i < ACCESS_LINES_PER_SECOND + 7; i++) expect((await here.request("/grids")).status).toBe(401);
    expect(accessLines(lines())).toHaveLength(ACCESS_LINES_PER_SECOND);
    expect(accessLines(lines()).some((line) => "dropped" in line)).toBe(false);

    clock.now += 1000;
    const next = await here.request("/grids");
    const last = accessLines(lines()).at(-1)!;
    expect(last).toMatchObject({ request_id: next.headers.get("X-Request-Id"), status: 401, dropped: 7 });
    await here.request("/grids");
    expect(accessLines(lines()).at(-1)).not.toHaveProperty("dropped");
  });

  it("refuses an ACCESS_LOG_SAMPLE_RATE outside 0–1 as a configuration error (500 misconfigured), and still logs that 500", async () => {
    const lines = consoleLines();
    const here = sampled({ now: Date.now() }, () => 0.99, "5%");
    const response = await here.post("/authenticate", { email: "a@acme.example", password: "whatever-password" });
    expect(response.status).toBe(500);
    const logged = lines();
    expect(logged.find((line) => line.event === "misconfigured")?.error).toMatch(/ACCESS_LOG_SAMPLE_RATE/);
    expect(accessLines(logged)).toEqual([expect.objectContaining({ status: 500, code: "internal", level: "error" })]);
  });
});
