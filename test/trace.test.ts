// W3C Trace Context through the HTTP surface: a valid traceparent is continued (trace id kept, the gateway's span
// as parent-id), an invalid one replaced, a missing one created; tracestate passed on; the trace id in logs and audit rows.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import demoOrigin from "../examples/demo-origin/src/index";
import worker from "../src/index";
import { parseTraceparent, uuidFrom } from "../src/http/trace";
import {
  auditRowsOf,
  demoOriginVerifyingByJwks,
  fakeOrigin,
  fixedClaims,
  gateway,
  postLogin,
  signWithJose,
} from "./helpers";
import { SEED_PASSWORD } from "../scripts/seed-data";

afterEach(() => vi.restoreAllMocks());

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID = "00f067aa0ba902b7";
const VALID = `00-${TRACE_ID}-${PARENT_ID}-01`;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** What the origin received for one proxied GET with `headers`. */
async function forwarded(headers: HeadersInit = {}): Promise<Record<string, string>> {
  const seen = fakeOrigin();
  const request = new Request("https://gateway.test/grids", { headers });
  request.headers.set("Authorization", `Bearer ${await signWithJose(fixedClaims())}`);
  const response = await gateway("/grids", { headers: request.headers });
  expect(response.status, await response.clone().text()).toBe(200);
  expect(seen).toHaveLength(1);
  return seen[0]!.headers;
}

describe("traceparent", () => {
  it("is continued when valid: same trace id and sampled flag, the gateway's own span id as parent-id", async () => {
    const headers = await forwarded({ traceparent: VALID, tracestate: "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7" });
    const [, traceId, parentId, flags] = TRACEPARENT.exec(headers.traceparent!)!;
    expect(traceId).toBe(TRACE_ID);
    expect(parentId).not.toBe(PARENT_ID);
    expect(parentId).not.toBe("0".repeat(16));
    expect(flags).toBe("01");
    expect(headers.tracestate, "tracestate passes through unchanged").toBe("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
  });

  it("keeps an unsampled trace unsampled, and gives each request its own span id", async () => {
    const first = await forwarded({ traceparent: `00-${TRACE_ID}-${PARENT_ID}-00` });
    vi.restoreAllMocks();
    const second = await forwarded({ traceparent: `00-${TRACE_ID}-${PARENT_ID}-00` });
    expect(first.traceparent).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-00$`));
    expect(second.traceparent).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-00$`));
    expect(first.traceparent).not.toBe(second.traceparent);
  });

  it("continues a higher version by its version 00 fields, forwarding version 00", async () => {
    const headers = await forwarded({ traceparent: `cc-${TRACE_ID}-${PARENT_ID}-01-what-the-future-adds` });
    expect(headers.traceparent).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));
  });

  it("is created when absent (a new trace id, unsampled), and a client's tracestate without it is dropped", async () => {
    const headers = await forwarded({ tracestate: "congo=t61rcWkgMzE" });
    const [, traceId, parentId, flags] = TRACEPARENT.exec(headers.traceparent!)!;
    expect(traceId).not.toBe("0".repeat(32));
    expect(parentId).not.toBe("0".repeat(16));
    expect(flags).toBe("00");
    expect(headers.tracestate).toBeUndefined();
  });

  it.each([
    ["upper-case hex", `00-${TRACE_ID.toUpperCase()}-${PARENT_ID}-01`],
    ["an all-zero trace id", `00-${"0".repeat(32)}-${PARENT_ID}-01`],
    ["an all-zero parent id", `00-${TRACE_ID}-${"0".repeat(16)}-01`],
    ["version ff", `ff-${TRACE_ID}-${PARENT_ID}-01`],
    ["version 00 with more after the flags", `${VALID}-00`],
    ["a higher version shorter than 55 characters", `01-${TRACE_ID}-${PARENT_ID}-1`],
    ["a higher version without a dash after the flags", `01-${TRACE_ID}-${PARENT_ID}-01x`],
    ["a short trace id", `00-${TRACE_ID.slice(2)}-${PARENT_ID}-01`],
    ["non-hex flags", `00-${TRACE_ID}-${PARENT_ID}-0g`],
    ["two traceparent fields", `${VALID}, 00-${"1".repeat(32)}-${PARENT_ID}-01`],
    ["garbage", "not a traceparent"],
  ])("is replaced when invalid: %s (and its tracestate dropped)", async (_case, traceparent) => {
    const headers = await forwarded({ traceparent, tracestate: "congo=t61rcWkgMzE" });
    const [, traceId, , flags] = TRACEPARENT.exec(headers.traceparent!)!;
    expect(traceId).not.toBe(TRACE_ID);
    expect(traceId).not.toBe("0".repeat(32));
    expect(flags).toBe("00");
    expect(headers.tracestate).toBeUndefined();
  });

  it("reaches the demo origin, which echoes it with tracestate in received.headers", async () => {
    const originEnv = demoOriginVerifyingByJwks();
    const ORIGIN = {
      fetch: (input: RequestInfo, init?: RequestInit) => demoOrigin.fetch(new Request(input, init), originEnv),
    } as unknown as Fetcher;
    const ctx = createExecutionContext();
    const request = new Request("https://gateway.test/grids", {
      headers: {
        Authorization: `Bearer ${await signWithJose(fixedClaims())}`,
        traceparent: VALID,
        tracestate: "congo=t61rcWkgMzE",
      },
    });
    const response = await worker.fetch(request, { ...env, ORIGIN }, ctx);
    await waitOnExecutionContext(ctx);
    expect(response.status).toBe(200);
    const { received } = await response.json<{ received: { headers: Record<string, string> } }>();
    expect(received.headers.Traceparent).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));
    expect(received.headers.Tracestate).toBe("congo=t61rcWkgMzE");
  });

  it("parses strictly", () => {
    expect(parseTraceparent(VALID)).toEqual({ traceId: TRACE_ID, flags: 1 });
    expect(parseTraceparent(`00-${TRACE_ID}-${PARENT_ID}-ff`)).toEqual({ traceId: TRACE_ID, flags: 255 });
    expect(parseTraceparent(`01-${TRACE_ID}-${PARENT_ID}-01`)).toEqual({ traceId: TRACE_ID, flags: 1 });
    expect(parseTraceparent(null)).toBeUndefined();
    expect(parseTraceparent(`0-${TRACE_ID}-${PARENT_ID}-01`)).toBeUndefined();
  });
});

describe("the request id", () => {
  it("is a version 4 UUID drawn with the trace's random bytes, fresh on every request", async () => {
    const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    expect(uuidFrom(new Uint8Array(16).fill(0xff))).toBe("ffffffff-ffff-4fff-bfff-ffffffffffff");
    expect(uuidFrom(new Uint8Array(16))).toBe("00000000-0000-4000-8000-000000000000");
    fakeOrigin();
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const id = (await gateway("/grids")).headers.get("X-Request-Id")!;
      expect(id).toMatch(V4);
      ids.add(id);
    }
    expect(ids.size).toBe(5);
  });
});

describe("the trace id", () => {
  it("is on every log line and audit row of the request", async () => {
    const logs = vi.spyOn(console, "log").mockImplementation(() => {});
    const response = await postLogin(
      { email: "architect@acme.example", password: SEED_PASSWORD },
      { traceparent: VALID },
    );
    expect(response.status).toBe(200);
    const requestId = response.headers.get("X-Request-Id")!;
    const lines = logs.mock.calls.map(([line]) => JSON.parse(String(line)));
    const ours = lines.filter((line) => line.request_id === requestId);
    expect(ours.length).toBeGreaterThan(0);
    for (const line of ours) expect(line.trace_id).toBe(TRACE_ID);
    const rows = await auditRowsOf(requestId);
    expect(rows.map((row) => [row.event, row.trace_id])).toEqual([["login.success", TRACE_ID]]);
  });

  it("of a started trace is logged and stored too", async () => {
    const response = await postLogin({ email: "architect@acme.example", password: "wrong-password-123" });
    expect(response.status).toBe(401);
    const [row] = await auditRowsOf(response.headers.get("X-Request-Id")!);
    expect(row?.trace_id).toMatch(/^[0-9a-f]{32}$/);
  });
});
