// A token presented again skips decoding, and the HMAC when it repeats byte for byte under a key still in use; its times are checked every time.
import { afterEach, describe, expect, it, vi } from "vitest";
import { env } from "cloudflare:workers";
import { fakeOrigin, fixedClaims, gateway, now, problem, signWithJose } from "./helpers";

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

function get(token: string): Promise<Response> {
  return gateway("/grids", { headers: { Authorization: `Bearer ${token}` } });
}

/** Replaces the character `fromEnd` places before the end with the one `ALPHABET` step `step` away. */
function withSignatureChar(token: string, fromEnd: number, step: (value: number) => number): string {
  const at = token.length - fromEnd;
  return token.slice(0, at) + ALPHABET[step(ALPHABET.indexOf(token[at]!))]! + token.slice(at + 1);
}

async function expectRefused(token: string, detail: RegExp): Promise<void> {
  const response = await get(token);
  expect(response.status).toBe(401);
  expect(response.headers.get("WWW-Authenticate")).toMatch(/error="invalid_token"/);
  expect((await problem(response)).detail).toMatch(detail);
}

describe("a token accepted before", () => {
  it("is accepted again, and refused once its signature is tampered with", async () => {
    const seen = fakeOrigin();
    const token = await signWithJose(fixedClaims());
    expect((await get(token)).status).toBe(200);
    expect((await get(token)).status).toBe(200);
    await expectRefused(
      withSignatureChar(token, 20, (value) => value ^ 1),
      /signature verification failed/,
    );
    expect(seen).toHaveLength(2);
  });

  it("is not HMAC'd again when it repeats byte for byte; any other signature is, and is refused", async () => {
    fakeOrigin();
    const token = await signWithJose(fixedClaims());
    const hmac = vi.spyOn(crypto.subtle, "verify");
    expect((await get(token)).status).toBe(200);
    expect(hmac).toHaveBeenCalledTimes(1);
    expect((await get(token)).status).toBe(200);
    expect(hmac).toHaveBeenCalledTimes(1);
    await expectRefused(
      withSignatureChar(token, 5, (value) => value ^ 2),
      /signature verification failed/,
    );
    const afterTampered = hmac.mock.calls.length;
    expect(afterTampered).toBeGreaterThan(1);
    expect((await get(token)).status).toBe(200);
    expect(hmac).toHaveBeenCalledTimes(afterTampered);
  });

  it("remembers the signature that verified last: the same input signed under the previous key, then the current one again", async () => {
    fakeOrigin();
    const claims = fixedClaims();
    const current = await signWithJose(claims);
    const previous = await signWithJose(claims, env.JWT_SECRET_PREVIOUS!);
    expect(previous.slice(0, previous.lastIndexOf("."))).toBe(current.slice(0, current.lastIndexOf(".")));
    const hmac = vi.spyOn(crypto.subtle, "verify");
    expect((await get(current)).status).toBe(200);
    const afterCurrent = hmac.mock.calls.length;
    expect((await get(previous)).status).toBe(200);
    expect(hmac.mock.calls.length).toBeGreaterThan(afterCurrent);
    const afterPrevious = hmac.mock.calls.length;
    expect((await get(previous)).status).toBe(200);
    expect(hmac).toHaveBeenCalledTimes(afterPrevious);
    expect((await get(current)).status).toBe(200);
    expect(hmac.mock.calls.length).toBeGreaterThan(afterPrevious);
  });

  it("is refused with a non-canonical or malformed signature segment", async () => {
    const seen = fakeOrigin();
    const token = await signWithJose(fixedClaims());
    expect((await get(token)).status).toBe(200);
    await expectRefused(
      withSignatureChar(token, 1, (value) => value | 1),
      /not canonical base64url/,
    );
    await expectRefused(`${token}A`, /not a compact JWS/);
    await expectRefused(token.slice(0, -1), /not a compact JWS/);
    await expectRefused(`${token.slice(0, -1)}=`, /not a compact JWS/);
    expect(seen).toHaveLength(1);
  });

  it("expires on time although it was accepted while valid", async () => {
    const seen = fakeOrigin();
    vi.useFakeTimers({ toFake: ["Date"] });
    const token = await signWithJose(fixedClaims({ exp: now() + 60 }));
    expect((await get(token)).status).toBe(200);
    vi.advanceTimersByTime(60_000);
    expect((await get(token)).status, "still inside CLOCK_SKEW").toBe(200);
    vi.advanceTimersByTime(31_000);
    await expectRefused(token, /token expired/);
    expect(seen).toHaveLength(2);
  });
});
