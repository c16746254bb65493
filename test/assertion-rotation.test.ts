// Rotating the assertion key with no lockstep (docs/origin-integration.md § Rotating the assertion key): origins
// that verify as documented, whatever moment they last fetched the JWKS, accept every valid assertion at every step.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { createRemoteJWKSet, customFetch } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { verifyGatewayAssertion } from "../examples/origin-verify/verify-assertion";
import { ASSERTION_TTL } from "../src/proxy/assertion";
import worker from "../src/index";
import { JWKS_MAX_AGE } from "../src/tokens/assertion-keys";
import { fakeOrigin, fixedClaims, GATEWAY, newAssertionKey, signWithJose, type OriginSeen } from "./helpers";

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** The clock tolerance the examples use. */
const TOLERANCE = 5;
/** How often a request is sent, and how late a forwarded request may still reach the origin, seconds. */
const EVERY = 10;
const DELIVERED_LATE = ASSERTION_TTL - TOLERANCE;

/** One step of a rotation: the gateway's settings, the origin's HS256 secrets, how long it lasts (seconds). */
interface Step {
  name: string;
  gateway: Record<string, string>;
  originSecrets?: string[];
  seconds: number;
}

/**
 * An origin instance: the example's verifier over a JWKS kept for exactly `JWKS_MAX_AGE` (no refetch before, even
 * for an unknown `kid`: the least an origin that caches as documented does).
 */
function originInstance(fetchJwks: (init: RequestInit) => Promise<Response>) {
  return createRemoteJWKSet(new URL(`${GATEWAY}/.well-known/jwks.json`), {
    cacheMaxAge: JWKS_MAX_AGE * 1000,
    cooldownDuration: JWKS_MAX_AGE * 1000,
    [customFetch]: (_url: string, init: RequestInit) => fetchJwks(init),
  });
}

/**
 * Runs `steps` on a fake clock: a request every `EVERY` seconds, each assertion verified at once and again
 * `DELIVERED_LATE` seconds later, by every origin instance: one that fetched the JWKS just before each step began
 * (the stalest view) and one that starts cold just after. Returns the refusals and the `kid`s each step signed with.
 */
async function rotate(steps: Step[]): Promise<{ refusals: string[]; kids: Record<string, string[]> }> {
  vi.useFakeTimers({ toFake: ["Date"] });
  const seen: OriginSeen[] = fakeOrigin();
  let bindings: typeof env = env;
  let originSecrets: string[] | undefined;
  const fetchJwks = async (init: RequestInit) => {
    const ctx = createExecutionContext();
    const response = await worker.fetch(new Request(`${GATEWAY}/.well-known/jwks.json`, init), bindings, ctx);
    await waitOnExecutionContext(ctx);
    return response;
  };
  const origins: { name: string; jwks: ReturnType<typeof originInstance> }[] = [];
  const pending: { due: number; request: Request; what: string }[] = [];
  const refusals: string[] = [];
  const kids: Record<string, string[]> = {};
  const verifyEverywhere = async (request: Request, what: string) => {
    for (const origin of origins) {
      await verifyGatewayAssertion(request, { jwks: origin.jwks, secrets: originSecrets }).catch((error: Error) =>
        refusals.push(`${what}, at ${origin.name}: ${error.message}`),
      );
    }
  };
  const deliverDue = async () => {
    const now = Date.now();
    for (const late of pending.filter((entry) => entry.due <= now)) {
      pending.splice(pending.indexOf(late), 1);
      await verifyEverywhere(late.request, `${late.what}, delivered ${DELIVERED_LATE} s late`);
    }
  };
  const sendOne = async (what: string) => {
    const ctx = createExecutionContext();
    const token = await signWithJose(fixedClaims());
    const response = await worker.fetch(
      new Request(`${GATEWAY}/grids`, { headers: { Authorization: `Bearer ${token}` } }),
      bindings,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(response.status, what).toBe(200);
    const { method, url, headers } = seen.at(-1)!;
    const request = new Request(url, { method, headers });
    const { kid } = JSON.parse(atob(headers["x-gateway-assertion"]!.split(".")[0]!));
    if (!kids[what]?.includes(kid)) (kids[what] ??= []).push(kid);
    await verifyEverywhere(request, what);
    pending.push({ due: Date.now() + DELIVERED_LATE * 1000, request, what });
  };

  for (const [index, step] of steps.entries()) {
    if (index > 0) {
      vi.setSystemTime(Date.now() - 1000);
      const stale = { name: `an origin that fetched just before "${step.name}"`, jwks: originInstance(fetchJwks) };
      await stale.jwks.reload();
      origins.push(stale);
      vi.setSystemTime(Date.now() + 1000);
    }
    bindings = { ...env, ...step.gateway };
    originSecrets = step.originSecrets;
    const cold = { name: `an origin started just after "${step.name}"`, jwks: originInstance(fetchJwks) };
    origins.push(cold);
    const end = Date.now() + step.seconds * 1000;
    do {
      await deliverDue();
      await sendOne(`a request during "${step.name}"`);
      vi.setSystemTime(Math.min(end, Date.now() + EVERY * 1000));
    } while (Date.now() < end);
  }
  while (pending.length > 0) {
    vi.setSystemTime(Math.min(...pending.map((entry) => entry.due)));
    await deliverDue();
  }
  return { refusals: [...new Set(refusals)], kids };
}

/** Each step signed with one key: `current` or `next` in the order given (the same label, the same kid). */
function expectSigners(kids: Record<string, string[]>, signers: string[]): void {
  const perStep = Object.values(kids);
  expect(perStep.map((stepKids) => stepKids.length)).toEqual(signers.map(() => 1));
  const byLabel = new Map<string, string>();
  for (const [index, label] of signers.entries()) {
    const kid = perStep[index]![0]!;
    expect(byLabel.get(label) ?? kid, `step ${index + 1}`).toBe(kid);
    byLabel.set(label, kid);
  }
  expect(new Set(byLabel.values()).size).toBe(new Set(signers).size);
}

describe("EdDSA (the default): publish → wait max-age → sign → wait an assertion's life → remove", () => {
  async function keys() {
    const [current, next] = [await newAssertionKey("EdDSA"), await newAssertionKey("EdDSA")];
    return { current: current.pkcs8, next: next.pkcs8 };
  }

  it("no origin ever refuses a valid assertion", async () => {
    const { current, next } = await keys();
    const { refusals, kids } = await rotate([
      { name: "the current key signs", gateway: { ASSERTION_KEYS: current }, seconds: 30 },
      { name: "publish the next key", gateway: { ASSERTION_KEYS: `${current},${next}` }, seconds: JWKS_MAX_AGE },
      {
        name: "sign with the next key",
        gateway: { ASSERTION_KEYS: `${next},${current}` },
        seconds: ASSERTION_TTL + TOLERANCE,
      },
      { name: "remove the previous key", gateway: { ASSERTION_KEYS: next }, seconds: 2 * JWKS_MAX_AGE },
    ]);
    expect(refusals).toEqual([]);
    expectSigners(kids, ["current", "current", "next", "next"]);
  });

  it("(the test can fail) signing before the JWKS max-age has passed is refused by an origin with a stale JWKS", async () => {
    const { current, next } = await keys();
    const { refusals } = await rotate([
      { name: "the current key signs", gateway: { ASSERTION_KEYS: current }, seconds: 30 },
      { name: "publish the next key", gateway: { ASSERTION_KEYS: `${current},${next}` }, seconds: 60 },
      { name: "sign with the next key", gateway: { ASSERTION_KEYS: `${next},${current}` }, seconds: 60 },
    ]);
    expect(refusals.join("\n")).toContain('at an origin that fetched just before "publish the next key"');
  });

  it("(the test can fail) removing the previous key before its assertions expired refuses them", async () => {
    const { current, next } = await keys();
    const { refusals } = await rotate([
      { name: "the current key signs", gateway: { ASSERTION_KEYS: current }, seconds: 30 },
      { name: "publish the next key", gateway: { ASSERTION_KEYS: `${current},${next}` }, seconds: JWKS_MAX_AGE },
      { name: "sign with the next key", gateway: { ASSERTION_KEYS: `${next},${current}` }, seconds: 10 },
      { name: "remove the previous key", gateway: { ASSERTION_KEYS: next }, seconds: 60 },
    ]);
    expect(refusals.join("\n")).toContain('during "publish the next key", delivered');
  });
});

describe("HS256: the origin accepts both secrets (by kid) → the gateway switches → the origin drops the old one", () => {
  const current = "rotation-current-assertion-secret-0123456789abcdef";
  const next = "rotation-next-assertion-secret-0123456789abcdef0123";
  const hs256 = (secret: string) => ({ ASSERTION_ALG: "HS256", ASSERTION_SECRET: secret });

  it("no origin ever refuses a valid assertion", async () => {
    const { refusals, kids } = await rotate([
      { name: "the current secret signs", gateway: hs256(current), originSecrets: [current], seconds: 30 },
      { name: "the origin accepts both", gateway: hs256(current), originSecrets: [next, current], seconds: 30 },
      {
        name: "the gateway signs with the next",
        gateway: hs256(next),
        originSecrets: [next, current],
        seconds: ASSERTION_TTL + TOLERANCE,
      },
      { name: "the origin drops the previous", gateway: hs256(next), originSecrets: [next], seconds: 120 },
    ]);
    expect(refusals).toEqual([]);
    expectSigners(kids, ["current", "current", "next", "next"]);
  });

  it("(the test can fail) in lockstep, or dropping the old secret too early, assertions are refused", async () => {
    const { refusals: lockstep } = await rotate([
      { name: "the current secret signs", gateway: hs256(current), originSecrets: [current], seconds: 30 },
      { name: "the gateway signs with the next", gateway: hs256(next), originSecrets: [current], seconds: 30 },
    ]);
    expect(lockstep.join("\n")).toContain("no ASSERTION_SECRET with this kid");
    const { refusals: early } = await rotate([
      { name: "the current secret signs", gateway: hs256(current), originSecrets: [next, current], seconds: 30 },
      { name: "the gateway signs with the next", gateway: hs256(next), originSecrets: [next, current], seconds: 10 },
      { name: "the origin drops the previous", gateway: hs256(next), originSecrets: [next], seconds: 60 },
    ]);
    expect(early.join("\n")).toContain('during "the current secret signs", delivered');
  });
});
