// The HttpOnly refresh cookie of browser apps: issued, rotated, cleared, CSRF-checked, never forwarded.
import { afterEach, describe, expect, it, vi } from "vitest";
import { SEED_PASSWORD } from "../scripts/seed-data";
import { fakeOrigin, fixedClaims, gateway, postLogin, problem, randomIp, signWithJose } from "./helpers";
import { kvSnapshot, newAccount, postRefresh, storedRecord } from "./refresh-helpers";

afterEach(() => vi.restoreAllMocks());

/** On CORS_ORIGINS in vitest.config.ts. */
const APP = "https://app.test";
const FOREIGN = "https://evil.test";
const COOKIE = "__Secure-gridgate-refresh";
const ATTRIBUTES = "Path=/authenticate; HttpOnly; Secure; SameSite=Strict";

/** The refresh cookie a response sets: its value and its full Set-Cookie line; undefined when none. */
function setCookieOf(response: Response): { value: string; line: string } | undefined {
  const lines = response.headers.getSetCookie().filter((line) => line.startsWith(`${COOKIE}=`));
  expect(lines.length).toBeLessThanOrEqual(1);
  if (lines.length === 0) return undefined;
  return { value: lines[0]!.slice(COOKIE.length + 1).split(";")[0]!, line: lines[0]! };
}

function expectCleared(response: Response): void {
  expect(setCookieOf(response)?.line).toBe(`${COOKIE}=; Max-Age=0; ${ATTRIBUTES}`);
}

/** A browser login of a fresh account from the allowed app: its refresh cookie value. */
async function browserLogin(): Promise<string> {
  const account = await newAccount();
  const response = await postLogin({ email: account.email, password: SEED_PASSWORD }, { Origin: APP });
  expect(response.status).toBe(200);
  return setCookieOf(response)!.value;
}

/** A request as a browser sends it with the cookie: no body, no Content-Type. */
function cookiePost(path: string, cookie: string, headers: Record<string, string> = {}): Promise<Response> {
  return gateway(path, {
    method: "POST",
    headers: { Cookie: `theme=dark; ${COOKIE}=${cookie}`, "CF-Connecting-IP": randomIp(), ...headers },
  });
}

describe("login from an allowed browser origin", () => {
  it("sets the refresh token as an HttpOnly, Secure, SameSite=Strict cookie and leaves it out of the body", async () => {
    const account = await newAccount();
    const response = await postLogin({ email: account.email, password: SEED_PASSWORD }, { Origin: APP });
    expect(response.status).toBe(200);
    expect(response.headers.get("Cache-Control")).toBe("no-store");
    const cookie = setCookieOf(response)!;
    expect(cookie.value).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(cookie.line).toBe(`${COOKIE}=${cookie.value}; Max-Age=604800; ${ATTRIBUTES}`);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).not.toHaveProperty("refresh_token");
    expect(JSON.stringify(body)).not.toContain(cookie.value);
    expect(body).toMatchObject({ token_type: "Bearer", expires_in: 3600, refresh_token_expires_in: 604800 });
    expect(await storedRecord(cookie.value)).toMatchObject({ memberId: account.memberId });
  });

  it("no Origin, or another origin: today's JSON, no cookie", async () => {
    const account = await newAccount();
    for (const headers of [{}, { Origin: FOREIGN }] as Record<string, string>[]) {
      const response = await postLogin({ email: account.email, password: SEED_PASSWORD }, headers);
      expect(response.status).toBe(200);
      expect(response.headers.getSetCookie()).toEqual([]);
      expect(((await response.json()) as Record<string, unknown>).refresh_token).toEqual(expect.any(String));
    }
  });
});

describe("refresh by cookie", () => {
  it("rotates: each refresh sets the successor cookie and spends the one presented", async () => {
    const first = await browserLogin();
    const one = await cookiePost("/authenticate/refresh", first, { Origin: APP });
    expect(one.status, await one.clone().text()).toBe(200);
    const second = setCookieOf(one)!;
    expect(second.line).toMatch(new RegExp(`; Max-Age=604800; ${ATTRIBUTES}$`));
    expect(second.value).not.toBe(first);
    expect((await one.json()) as Record<string, unknown>).not.toHaveProperty("refresh_token");
    expect((await storedRecord(first))!.usedAt).toEqual(expect.any(Number));

    const two = await cookiePost("/authenticate/refresh", second.value, { Origin: APP });
    expect(two.status).toBe(200);
    const third = setCookieOf(two)!;
    expect(third.value).not.toBe(second.value);
    expect((await storedRecord(second.value))!.usedAt).toEqual(expect.any(Number));
    expect((await storedRecord(third.value))!.usedAt).toBeUndefined();
  });

  it.each([
    ["another origin", { Origin: FOREIGN }],
    ["no Origin", {}],
    ['Origin "null"', { Origin: "null" }],
  ])("with %s: 403 origin_not_allowed, nothing rotated, cookie untouched", async (_name, headers) => {
    const cookie = await browserLogin();
    const before = await kvSnapshot();
    const response = await cookiePost("/authenticate/refresh", cookie, headers);
    expect(response.status).toBe(403);
    expect((await problem(response)).code).toBe("origin_not_allowed");
    expect(response.headers.getSetCookie()).toEqual([]);
    expect(await kvSnapshot()).toEqual(before);
    // the session still works from the app
    expect((await cookiePost("/authenticate/refresh", cookie, { Origin: APP })).status).toBe(200);
  });

  it("a refused refresh clears the cookie: an unknown token, or none at all", async () => {
    const cookie = await browserLogin();
    expect((await cookiePost("/authenticate/refresh", cookie, { Origin: APP })).status).toBe(200);
    const spent = await cookiePost("/authenticate/refresh", "x".repeat(43), { Origin: APP });
    expect(spent.status).toBe(400);
    expect((await problem(spent)).code).toBe("invalid_grant");
    expectCleared(spent);

    const none = await gateway("/authenticate/refresh", { method: "POST", headers: { Origin: APP } });
    expect(none.status).toBe(400);
    expect((await problem(none)).code).toBe("invalid_grant");
    expectCleared(none);
  });

  it("a body token still wins, and a client without Origin gets exactly today's JSON", async () => {
    const account = await newAccount();
    const login = (await (await postLogin({ email: account.email, password: SEED_PASSWORD })).json()) as Record<
      string,
      string
    >;
    const response = await postRefresh({ refresh_token: login.refresh_token }, { Cookie: `${COOKIE}=whatever` });
    expect(response.status).toBe(200);
    expect(response.headers.getSetCookie()).toEqual([]);
    const body = (await response.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(
      ["access_token", "expires_in", "refresh_token", "refresh_token_expires_in", "scope", "token_type"].sort(),
    );
    // without Origin and without cookie an empty body is still today's 415
    const empty = await gateway("/authenticate/refresh", { method: "POST" });
    expect(empty.status).toBe(415);
  });

  it("an allowed origin sending the token in the body gets the cookie back instead", async () => {
    const account = await newAccount();
    const login = (await (await postLogin({ email: account.email, password: SEED_PASSWORD })).json()) as Record<
      string,
      string
    >;
    const response = await postRefresh({ refresh_token: login.refresh_token }, { Origin: APP });
    expect(response.status).toBe(200);
    expect(setCookieOf(response)!.value).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect((await response.json()) as Record<string, unknown>).not.toHaveProperty("refresh_token");
  });
});

describe("revoke (logout) by cookie", () => {
  it("revokes the family and clears the cookie", async () => {
    const cookie = await browserLogin();
    const response = await cookiePost("/authenticate/revoke", cookie, { Origin: APP });
    expect(response.status).toBe(200);
    expectCleared(response);
    const after = await cookiePost("/authenticate/refresh", cookie, { Origin: APP });
    expect(after.status).toBe(400);
    expectCleared(after);
  });

  it.each([
    ["another origin", { Origin: FOREIGN }],
    ["no Origin", {}],
  ])("with %s: 403 origin_not_allowed, nothing revoked", async (_name, headers) => {
    const cookie = await browserLogin();
    const before = await kvSnapshot();
    const response = await cookiePost("/authenticate/revoke", cookie, headers);
    expect(response.status).toBe(403);
    expect((await problem(response)).code).toBe("origin_not_allowed");
    expect(response.headers.getSetCookie()).toEqual([]);
    expect(await kvSnapshot()).toEqual(before);
    expect((await cookiePost("/authenticate/refresh", cookie, { Origin: APP })).status).toBe(200);
  });

  it("from the app without a cookie: 200 and cleared (a logout always succeeds)", async () => {
    const response = await gateway("/authenticate/revoke", { method: "POST", headers: { Origin: APP } });
    expect(response.status).toBe(200);
    expectCleared(response);
    // without Origin the same request is today's 415
    expect((await gateway("/authenticate/revoke", { method: "POST" })).status).toBe(415);
  });
});

describe("forwarding", () => {
  it.each([
    [`a=1; ${COOKIE}=secret-value; b=2`, "a=1; b=2"],
    [`${COOKIE}=secret-value`, undefined],
    [`${COOKIE}=secret-value; ${COOKIE}=other`, undefined],
    ["a=1; b=2", "a=1; b=2"],
    [`x${COOKIE}=kept`, `x${COOKIE}=kept`],
  ])("Cookie %j reaches the origin as %j", async (sent, expected) => {
    const seen = fakeOrigin();
    const token = await signWithJose(fixedClaims());
    const response = await gateway("/grids", { headers: { Authorization: `Bearer ${token}`, Cookie: sent } });
    expect(response.status).toBe(200);
    expect(seen[0]!.headers.cookie).toBe(expected);
  });

  it.each([
    [
      "two Cookie fields",
      [
        ["Cookie", "theme=dark"],
        ["Cookie", `${COOKIE}=secret-value; lang=en`],
      ],
      "theme=dark; lang=en",
    ],
    [
      "two fields, the cookie first",
      [
        ["Cookie", `${COOKIE}=secret-value`],
        ["Cookie", "theme=dark"],
      ],
      "theme=dark",
    ],
    [
      "three fields",
      [
        ["Cookie", "a=1"],
        ["Cookie", `${COOKIE}=secret-value`],
        ["Cookie", "b=2"],
      ],
      "a=1, b=2",
    ],
    [
      "joined with `, ` by the client",
      [["Cookie", `theme=dark, ${COOKIE}=secret-value, lang=en`]],
      "theme=dark, lang=en",
    ],
    ["spaces around the name", [["Cookie", `theme=dark;   ${COOKIE} =secret-value;lang=en`]], "theme=dark;lang=en"],
    ["no space after `;`", [["Cookie", `theme=dark;${COOKIE}=secret-value`]], "theme=dark"],
    ["another case", [["Cookie", `theme=dark; __SECURE-GRIDGATE-REFRESH=secret-value`]], "theme=dark"],
    ["lower case", [["Cookie", `__secure-gridgate-refresh=secret-value; theme=dark`]], "theme=dark"],
    ["percent-encoded name", [["Cookie", `theme=dark; __Secure-gridgate%2Drefresh=secret-value`]], "theme=dark"],
    [
      "only the cookie, in two fields",
      [
        ["Cookie", `${COOKIE}=secret-value`],
        ["Cookie", `${COOKIE}=other`],
      ],
      undefined,
    ],
    ["a comma inside another cookie's value", [["Cookie", `list=a,b; ${COOKIE}=secret-value`]], "list=a,b"],
  ])("%s: the refresh cookie never reaches the origin, the others do", async (_case, fields, expected) => {
    const seen = fakeOrigin();
    const token = await signWithJose(fixedClaims());
    const headers = new Headers([["Authorization", `Bearer ${token}`]]);
    for (const [name, value] of fields as [string, string][]) headers.append(name, value);
    const response = await gateway("/grids", { headers });
    expect(response.status).toBe(200);
    expect(seen[0]!.headers.cookie).toBe(expected);
    expect(JSON.stringify(seen[0]!.headers)).not.toContain("secret-value");
  });
});
