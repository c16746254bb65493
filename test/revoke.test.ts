// POST /authenticate/revoke (RFC 7009-shaped, revoke-all with a Bearer token) and bad input to both refresh routes.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { gateway, login, problem, randomIp } from "./helpers";
import {
  expectInvalidGrant,
  kvSnapshot,
  loginAccount,
  newAccount,
  postRefresh,
  postRevoke,
  refreshOk,
  storedRecord,
} from "./refresh-helpers";

describe("revoke (logout)", () => {
  it("ends the session: refresh after revoke is 401, and revoking again is still 200", async () => {
    const t0 = (await login("viewer@acme.example")).refresh_token as string;
    const response = await postRevoke({ refresh_token: t0 });
    expect(response.status).toBe(200);
    expect(response.headers.get("Cache-Control")).toBe("no-store");
    expect(await response.text()).toBe("");
    expect(await env.TOKENS.get(`refresh-family:${(await storedRecord(t0))!.familyId}`, "json")).toMatchObject({
      reason: "revoked",
      memberId: 2551,
    });
    await expectInvalidGrant(await postRefresh({ refresh_token: t0 }));

    const before = await kvSnapshot();
    expect((await postRevoke({ refresh_token: t0 })).status).toBe(200);
    expect(await kvSnapshot()).toEqual(before);
  });

  it("revoking an already-rotated token ends the newest token of its family too", async () => {
    const t0 = (await login("viewer@acme.example")).refresh_token as string;
    const t1 = (await refreshOk(t0)).refresh_token as string;
    expect((await postRevoke({ token: t0, token_type_hint: "refresh_token" })).status).toBe(200);
    await expectInvalidGrant(await postRefresh({ refresh_token: t1 }));
  });

  it("answers 200 for unknown tokens and access tokens, and changes nothing", async () => {
    const { access_token } = await login("viewer@acme.example");
    const before = await kvSnapshot();
    for (const token of [`ggr_${"A".repeat(43)}`, access_token, "not a token", "refresh:../../x"]) {
      expect((await postRevoke({ token })).status, token).toBe(200);
    }
    expect(await kvSnapshot()).toEqual(before);
  });

  it("accepts a form-encoded body", async () => {
    const t0 = (await login("viewer@acme.example")).refresh_token as string;
    const response = await gateway("/authenticate/revoke", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "CF-Connecting-IP": randomIp() },
      body: new URLSearchParams({ token: t0, token_type_hint: "refresh_token" }).toString(),
    });
    expect(response.status).toBe(200);
    await expectInvalidGrant(await postRefresh({ refresh_token: t0 }));
  });
});

describe("revoke all sessions of a member", () => {
  it("with a Bearer access token and {all: true} ends every session of that member and no one else's", async () => {
    const account = await newAccount();
    const other = await newAccount();
    const a = await loginAccount(account);
    const b = await loginAccount(account);
    const bystander = (await loginAccount(other)).refresh_token as string;

    const response = await postRevoke({ all: true }, { Authorization: `Bearer ${a.access_token}` });
    expect(response.status).toBe(200);
    expect(await env.TOKENS.get(`refresh-member:${account.memberId}`, "json")).toMatchObject({
      notBefore: expect.any(Number),
    });
    await expectInvalidGrant(await postRefresh({ refresh_token: a.refresh_token }));
    await expectInvalidGrant(await postRefresh({ refresh_token: b.refresh_token }));
    expect((await refreshOk(bystander)).refresh_token).toMatch(/^ggr_/);
    expect((await refreshOk((await loginAccount(account)).refresh_token)).refresh_token).toMatch(/^ggr_/);
  });

  it("needs a valid Bearer access token: none, a refresh token or a bad one is 401 and changes nothing", async () => {
    const { refresh_token } = await login("builder@acme.example");
    const before = await kvSnapshot();
    const none = await postRevoke({ all: true, refresh_token });
    expect(none.status).toBe(401);
    expect(none.headers.get("WWW-Authenticate")).toBe('Bearer realm="api"');
    expect((await problem(none)).code).toBe("missing_token");
    for (const bearer of [refresh_token, "x.y.z"]) {
      const response = await postRevoke({ all: "true" }, { Authorization: `Bearer ${bearer}` });
      expect(response.status).toBe(401);
      expect((await problem(response)).code).toBe("invalid_token");
    }
    expect(await kvSnapshot()).toEqual(before);
    expect((await refreshOk(refresh_token)).refresh_token).toMatch(/^ggr_/);
  });
});

describe("bad input never reaches storage and is never a 500", () => {
  const oneMegabyte = "A".repeat(1024 * 1024);

  it.each([
    ["missing field", {}, 400, "invalid_request"],
    ["wrong type: number", { refresh_token: 42 }, 400, "invalid_request"],
    ["wrong type: array", { refresh_token: ["ggr_x"] }, 400, "invalid_request"],
    ["wrong type: null", { refresh_token: null }, 400, "invalid_request"],
    ["empty string", { refresh_token: "" }, 400, "invalid_request"],
    ["JSON array body", [], 400, "invalid_request"],
    ["1 MB token", { refresh_token: `ggr_${oneMegabyte}` }, 413, "payload_too_large"],
    ["10 KB token", { refresh_token: `ggr_${"A".repeat(10_000)}` }, 400, "invalid_grant"],
    ["non-ASCII", { refresh_token: `ggr_${"é".repeat(43)}` }, 400, "invalid_grant"],
    ["KV-key-breaking", { refresh_token: "refresh:../../\u0000\n*" }, 400, "invalid_grant"],
    ["key prefix of another record", { refresh_token: "refresh-family:x" }, 400, "invalid_grant"],
    ["non-canonical base64url", { refresh_token: `ggr_${"A".repeat(42)}B` }, 400, "invalid_grant"],
    ["padded", { refresh_token: `ggr_${"A".repeat(43)}=` }, 400, "invalid_grant"],
    ["unknown well-formed token", { refresh_token: `ggr_${"A".repeat(43)}` }, 400, "invalid_grant"],
  ])("refresh with %s → %i %s", async (_name, body, status, code) => {
    const before = await kvSnapshot();
    const response = await postRefresh(body);
    expect(response.status).toBe(status);
    expect((await problem(response)).code).toBe(code);
    expect(await kvSnapshot()).toEqual(before);
  });

  it.each([
    ["invalid JSON", "{", "application/json", 400],
    ["text/plain", "refresh_token=x", "text/plain", 415],
  ])("refresh with %s → %i", async (_name, body, contentType, status) => {
    const response = await postRefresh(body, { "Content-Type": contentType });
    expect(response.status).toBe(status);
    await problem(response);
  });

  it.each([
    ["no token and no all", {}],
    ["all: false only", { all: false }],
    ["all of the wrong type", { all: "yes", token: "x" }],
    ["token of the wrong type", { token: 5 }],
    ["two different tokens", { token: `ggr_${"A".repeat(43)}`, refresh_token: `ggr_${"E".repeat(43)}` }],
  ])("revoke with %s → 400", async (_name, body) => {
    const before = await kvSnapshot();
    const response = await postRevoke(body);
    expect(response.status).toBe(400);
    expect((await problem(response)).code).toBe("invalid_request");
    expect(await kvSnapshot()).toEqual(before);
  });
});
