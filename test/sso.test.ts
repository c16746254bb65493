// Single sign-on through the HTTP surface, against a real OpenID Provider (oidc-provider on loopback, signed in on its
// own login page): the happy path, every refusal of the state, the code and the ID token, the member rules, key
// rotation, a provider that is down or hangs, the return_to allowlist, and organisations that refuse passwords.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { SEED_PASSWORD } from "../scripts/seed-data";
import { createWorker } from "../src/worker";
import { hashPassword } from "../src/credentials/password";
import { createServices } from "../src/services";
import { REFRESH_COOKIE } from "../src/routes/refresh-cookie";
import { SSO_COOKIE } from "../src/sso/browser";
import { GATEWAY, adminRequest, auditRowsOf, gateway, postLogin, problem, randomId, randomIp } from "./helpers";
import { hookedD1 } from "./locations";
import {
  APP,
  Browser,
  appError,
  connectSso,
  nextTokenResponse,
  oidc,
  rotateProviderKey,
  signIn,
  signInAtProvider,
  startUrl,
  type GatewayFetch,
} from "./sso-helpers";

const ARCHITECT = "architect@acme.example";
const GATEWAY_HOST = new URL(GATEWAY).host;

beforeAll(async () => {
  // the seeded organisation m7l9hw (acme.example), optional, as npm run dev connects it
  await connectSso("m7l9hw", { domains: ["acme.example"] });
});

afterEach(() => vi.restoreAllMocks());

/** Adds a member to an organisation (by id) with the seed password; resolves to its id. */
async function addMember(organisationId: number, email: string, status = "active"): Promise<number> {
  const hash = await hashPassword(SEED_PASSWORD, env.PASSWORD_PEPPER!);
  const row = await env.DB.prepare(
    "INSERT INTO members (identifier, organisation_id, email, password_hash, role, status) VALUES (?, ?, ?, ?, 'builder', ?) RETURNING id",
  )
    .bind(randomId("s"), organisationId, email, hash, status)
    .first<{ id: number }>();
  return row!.id;
}

/** A new organisation (professional unless said) with its own domain; resolves to its id, identifier and domain. */
async function newOrganisation(plan = "professional"): Promise<{ id: number; identifier: string; domain: string }> {
  const identifier = randomId("sso");
  const domain = `${identifier}.example`;
  const row = await env.DB.prepare(
    "INSERT INTO organisations (identifier, name, domain, plan) VALUES (?, ?, ?, ?) RETURNING id",
  )
    .bind(identifier, `SSO ${identifier}`, domain, plan)
    .first<{ id: number }>();
  return { id: row!.id, identifier, domain };
}

/** The one `sso.login.*` audit row of the response's request. */
async function auditOf(response: Response): Promise<{ event: string; memberId: number | null; detail: any }> {
  const [row] = await auditRowsOf(response.headers.get("X-Request-Id")!);
  expect(row, "no audit row").toBeDefined();
  return { event: row!.event, memberId: row!.member_id, detail: JSON.parse(row!.detail ?? "{}") };
}

/** Expects a refused sign-in: a 302 to the app with `error`, the cookie of the sign-in cleared, the reason audited. */
async function expectRefused(response: Response, error: string, reason: string): Promise<any> {
  const sent = appError(response);
  expect(sent.error).toBe(error);
  expect(sent.description).toBeTruthy();
  expect(response.headers.getSetCookie().join("\n")).not.toContain(REFRESH_COOKIE);
  const audit = await auditOf(response);
  expect(audit.event).toBe("sso.login.failure");
  expect(audit.detail.reason).toBe(reason);
  return audit;
}

/** The URL a `fetch` call goes to. */
function urlOf(input: RequestInfo | URL): string {
  return typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
}

/** A request to the gateway from a client IP of its own (the per-IP login limit counts SSO starts too). */
function fromNewIp(path: string, init: RequestInit = {}): Promise<Response> {
  return gateway(path, { redirect: "manual", ...init, headers: { ...init.headers, "CF-Connecting-IP": randomIp() } });
}

/** A gateway app on `bindings` whose identity-provider calls wait at most `idpWaitMs`. */
function gatewayWaiting(idpWaitMs: number, bindings = env): GatewayFetch {
  const app = createWorker({ servicesFor: () => createServices(bindings, { idpWaitMs }) });
  return async (request) => {
    const ctx = createExecutionContext();
    const response = await app.fetch(request, bindings, ctx);
    await waitOnExecutionContext(ctx);
    return response;
  };
}

describe("the happy path", () => {
  it("start → the provider's login page → callback: the refresh cookie and a 302 to return_to, no token in any URL", async () => {
    const browser = new Browser();
    const start = await browser.fetch(startUrl(ARCHITECT));
    expect(start.status).toBe(302);
    const authorize = new URL(start.headers.get("Location")!);
    expect(authorize.origin + authorize.pathname).toBe(`${oidc.issuer}/auth`);
    expect(Object.fromEntries(authorize.searchParams)).toMatchObject({
      client_id: oidc.clients.sso.id,
      redirect_uri: `${GATEWAY}/authenticate/sso/callback`,
      response_type: "code",
      scope: "openid email",
      code_challenge_method: "S256",
      login_hint: ARCHITECT,
    });
    for (const name of ["state", "nonce", "code_challenge"]) expect(authorize.searchParams.get(name)).toBeTruthy();
    const binding = start.headers.getSetCookie().find((cookie) => cookie.startsWith(`${SSO_COOKIE}=`));
    expect(binding).toMatch(/; Max-Age=600; Path=\/authenticate\/sso\/callback; HttpOnly; Secure; SameSite=Lax$/);
    expect(start.headers.get("Cache-Control")).toBe("no-store");

    const callback = await browser.fetch(await signInAtProvider(browser, ARCHITECT));
    expect(callback.status).toBe(302);
    const location = callback.headers.get("Location")!;
    expect(location).toBe(`${APP}/signed-in`);
    const cookies = callback.headers.getSetCookie();
    const refresh = cookies.find((cookie) => cookie.startsWith(`${REFRESH_COOKIE}=`))!;
    expect(refresh).toMatch(
      /^__Secure-gridgate-refresh=ggr_[A-Za-z0-9_-]{43}; Max-Age=604800; Path=\/authenticate; HttpOnly; Secure; SameSite=Strict$/,
    );
    expect(cookies).toContain(
      `${SSO_COOKIE}=; Max-Age=0; Path=/authenticate/sso/callback; HttpOnly; Secure; SameSite=Lax`,
    );
    expect(callback.headers.get("Cache-Control")).toBe("no-store");
    expect(callback.headers.get("Referrer-Policy")).toBe("no-referrer");
    expect(location).not.toMatch(/ggr_|eyJ|code=|access_token/);
    expect(await callback.text()).toBe("");

    // the app then takes its access token by a cookie refresh, as after a password login
    const refreshed = await browser.fetch(`${GATEWAY}/authenticate/refresh`, {
      method: "POST",
      headers: { Origin: APP },
    });
    expect(refreshed.status, await refreshed.clone().text()).toBe(200);
    const tokens = (await refreshed.json()) as Record<string, any>;
    expect(tokens).toMatchObject({ token_type: "Bearer", scope: "architect" });
    expect(tokens.refresh_token).toBeUndefined();
    const claims = JSON.parse(atob(tokens.access_token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    expect(claims).toMatchObject({
      memberEntityId: "2549",
      memberEntityIdentifier: "o6q2is",
      organisationEntityIdentifier: "m7l9hw",
    });

    const audit = await auditOf(callback);
    expect(audit).toMatchObject({ event: "sso.login.success", memberId: 2549 });
    expect(typeof audit.detail.familyId).toBe("string");
  });

  it("issues after the member's latest revocation, even one recorded ahead of the clock (issueInstant)", async () => {
    const org = await newOrganisation();
    await connectSso(org.identifier, { domains: [org.domain] });
    const email = `ahead@${org.domain}`;
    const memberId = await addMember(org.id, email);
    // a revocation stamped 5 s in the future by another machine's clock: a session issued at the clock would be refused
    await env.DB.prepare("UPDATE members SET sessions_revoked_at = ? WHERE id = ?")
      .bind(Date.now() + 5000, memberId)
      .run();
    const browser = new Browser();
    expect((await signIn(browser, email)).status).toBe(302);
    const refreshed = await browser.fetch(`${GATEWAY}/authenticate/refresh`, {
      method: "POST",
      headers: { Origin: APP },
    });
    expect(refreshed.status, await refreshed.clone().text()).toBe(200);
  });

  it("issues at the callback's arrival: a sign-out that lands after the member was read refuses the session", async () => {
    const org = await newOrganisation();
    await connectSso(org.identifier, { domains: [org.domain] });
    const email = `raced@${org.domain}`;
    const memberId = await addMember(org.id, email);
    // the callback's isolate: its clock a second behind real time until the sign-out, a second ahead after it
    const clock = { now: Date.now() };
    const bindings = {
      ...env,
      DB: hookedD1(/from "members"/, "after", async () => {
        const path = "/authenticate/admin/member/sign-out";
        expect((await gateway(path, await adminRequest(path, { member_id: memberId }))).status).toBe(200);
        clock.now = Date.now() + 1000;
      }),
    };
    const services = createServices(bindings, { now: () => clock.now });
    const app = createWorker({ servicesFor: () => services });
    const browser = new Browser(async (request) => {
      const ctx = createExecutionContext();
      const response = await app.fetch(request, bindings, ctx);
      await waitOnExecutionContext(ctx);
      return response;
    });
    const callback = await signInAtProvider(browser, email);
    clock.now = Date.now() - 1000;
    const response = await browser.fetch(callback);
    expect(response.headers.get("Location"), "the callback read an active member").toBe(`${APP}/signed-in`);
    const refreshed = await browser.fetch(`${GATEWAY}/authenticate/refresh`, {
      method: "POST",
      headers: { Origin: APP },
    });
    expect(refreshed.status, await refreshed.clone().text()).toBe(400);
    expect((await problem(refreshed)).code).toBe("invalid_grant");
  });

  it("nothing about the flow reaches the origin; the gateway calls only the provider", async () => {
    const realFetch = globalThis.fetch;
    const outbound: string[] = [];
    vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => {
      outbound.push(urlOf(input));
      return realFetch(input, init);
    });
    const browser = new Browser();
    const callback = await signIn(browser, "builder@acme.example");
    expect(callback.status).toBe(302);
    expect(outbound.length).toBeGreaterThan(0);
    expect(
      outbound.every((url) => url.startsWith(oidc.issuer)),
      outbound.join("\n"),
    ).toBe(true);
  });
});

describe("the state and the browser", () => {
  it("a callback without state, or with an altered one, is 400 problem+json (no safe return_to)", async () => {
    const browser = new Browser();
    const callback = new URL(await signInAtProvider(browser, ARCHITECT));
    const withoutState = new URL(callback);
    withoutState.searchParams.delete("state");
    const missing = await browser.fetch(withoutState.href);
    expect(missing.status).toBe(400);
    expect((await problem(missing)).code).toBe("invalid_request");
    expect((await auditOf(missing)).detail.reason).toBe("state_invalid");

    const altered = new URL(callback);
    altered.searchParams.set("state", `${callback.searchParams.get("state")}x`);
    const response = await browser.fetch(altered.href);
    expect(response.status).toBe(400);
    expect((await problem(response)).code).toBe("invalid_request");
    expect(response.headers.getSetCookie().join()).not.toContain(REFRESH_COOKIE);
    // the real state was left alone: the sign-in still completes
    expect((await browser.fetch(callback.href)).headers.get("Location")).toBe(`${APP}/signed-in`);
  });

  it("a replayed state is refused (single use), and so is one from another browser (login CSRF)", async () => {
    const browser = new Browser();
    const callback = await signInAtProvider(browser, ARCHITECT);
    expect((await browser.fetch(callback)).headers.get("Location")).toBe(`${APP}/signed-in`);
    const replayed = await browser.fetch(callback);
    expect(replayed.status).toBe(400);
    expect((await problem(replayed)).detail).toMatch(/used or expired/);

    const victim = new Browser();
    const attackers = await signInAtProvider(new Browser(), "builder@acme.example");
    expect(victim.cookie(GATEWAY_HOST, SSO_COOKIE)).toBeUndefined();
    await expectRefused(await victim.fetch(attackers), "access_denied", "browser_mismatch");
    expect(victim.cookie(GATEWAY_HOST, REFRESH_COOKIE)).toBeUndefined();

    // also when the victim has a sign-in of its own in progress: its cookie does not bind the attacker's state
    const own = new Browser();
    await own.fetch(startUrl(ARCHITECT));
    expect(own.cookie(GATEWAY_HOST, SSO_COOKIE)).toBeDefined();
    await expectRefused(
      await own.fetch(await signInAtProvider(new Browser(), ARCHITECT)),
      "access_denied",
      "browser_mismatch",
    );
  });

  it("callbacks from one IP are limited before any state is looked up: 429 rate_limited with Retry-After", async () => {
    const ip = randomIp();
    let limited: Response | undefined;
    for (let i = 0; i < 40 && !limited; i++) {
      const response = await gateway(`/authenticate/sso/callback?state=${randomId("state")}&code=c`, {
        redirect: "manual",
        headers: { "CF-Connecting-IP": ip },
      });
      if (response.status === 429) limited = response;
      else expect(response.status).toBe(400);
    }
    expect(limited?.status).toBe(429);
    expect(limited!.headers.get("Retry-After")).toBe("60");
    expect((await problem(limited!)).code).toBe("rate_limited");
  });

  it("a state older than 10 minutes is refused", async () => {
    const browser = new Browser();
    const callback = new URL(await signInAtProvider(browser, ARCHITECT));
    await env.DB.prepare("UPDATE sso_states SET expires_at = ?")
      .bind(Date.now() - 1)
      .run();
    await expectRefused(await browser.fetch(callback.href), "access_denied", "state_expired");
  });

  it("the provider's error (the user cancelled) comes back to the app as access_denied", async () => {
    const browser = new Browser();
    const start = await browser.fetch(startUrl(ARCHITECT));
    const state = new URL(start.headers.get("Location")!).searchParams.get("state")!;
    const params = new URLSearchParams({ error: "access_denied", state, iss: oidc.issuer });
    const response = await browser.fetch(`${GATEWAY}/authenticate/sso/callback?${params}`);
    expect((await expectRefused(response, "access_denied", "idp_error")).detail.why).toBe("access_denied");
  });
});

describe("the code and the ID token", () => {
  it("a code used once is refused by the provider when replayed under a new state", async () => {
    const browser = new Browser();
    const first = new URL(await signInAtProvider(browser, ARCHITECT));
    expect((await browser.fetch(first.href)).status).toBe(302);
    const start = await browser.fetch(startUrl(ARCHITECT));
    const state = new URL(start.headers.get("Location")!).searchParams.get("state")!;
    const replay = new URL(first);
    replay.searchParams.set("state", state);
    await expectRefused(await browser.fetch(replay.href), "access_denied", "code_rejected");
  });

  const tampered: [string, Parameters<typeof nextTokenResponse>[0], RegExp][] = [
    ["a nonce that is not the one sent", { claims: { nonce: "another-nonce" } }, /nonce/],
    ["an ID token for another client", { claims: { aud: "another-client", azp: "another-client" } }, /aud|azp/],
    [
      "an expired ID token",
      { claims: { exp: Math.floor(Date.now() / 1000) - 600, iat: Math.floor(Date.now() / 1000) - 1200 } },
      /exp/,
    ],
    [
      "an ID token signed by a key the provider never published",
      { sign: "unknown-key" },
      /JWKSNoMatchingKey|no applicable key/i,
    ],
    [
      "an ID token naming a published kid but signed by another key",
      { sign: "published-kid-other-key" },
      /signature verification failed/i,
    ],
    ["an unsigned ID token (alg none)", { sign: "none" }, /alg|none|unsupported/i],
    ["an ID token signed HS256 with the client secret", { sign: "hs256-client-secret" }, /unsupported JWS "?alg/i],
    ["an ID token from another issuer", { claims: { iss: "https://evil.example" } }, /iss/],
  ];
  for (const [name, change, why] of tampered) {
    it(`refuses ${name}`, async () => {
      const browser = new Browser();
      const callback = await signInAtProvider(browser, ARCHITECT);
      await nextTokenResponse(change);
      const audit = await expectRefused(await browser.fetch(callback), "access_denied", "id_token_invalid");
      expect(audit.detail.why).toMatch(why);
    });
  }

  it("a rotated signing key: the new kid is fetched at once, without a restart", async () => {
    const realFetch = globalThis.fetch;
    const jwksFetches: string[] = [];
    vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => {
      const url = urlOf(input);
      if (url === `${oidc.issuer}/jwks`) jwksFetches.push(url);
      return realFetch(input, init);
    });
    expect((await signIn(new Browser(), ARCHITECT)).headers.get("Location")).toBe(`${APP}/signed-in`);
    const before = jwksFetches.length;
    const kid = await rotateProviderKey();
    const browser = new Browser();
    const callback = await signInAtProvider(browser, ARCHITECT);
    const response = await browser.fetch(callback);
    expect(response.headers.get("Location")).toBe(`${APP}/signed-in`);
    expect(jwksFetches.length).toBe(before + 1);
    expect(kid).toMatch(/^k-/);
  });
});

describe("the verified email and the member", () => {
  it("an email the provider has not verified is refused (Entra ID's xms_edov counts as verified without email_verified)", async () => {
    const browser = new Browser();
    const callback = await signInAtProvider(browser, ARCHITECT);
    await nextTokenResponse({ claims: { email_verified: false } });
    await expectRefused(await browser.fetch(callback), "access_denied", "email_unverified");

    // a provider that says email_verified: false is not overruled by an xms_edov of its own making
    const both = new Browser();
    const bothCallback = await signInAtProvider(both, ARCHITECT);
    await nextTokenResponse({ claims: { email_verified: false, xms_edov: true } });
    await expectRefused(await both.fetch(bothCallback), "access_denied", "email_unverified");

    const entra = new Browser();
    const entraCallback = await signInAtProvider(entra, ARCHITECT);
    await nextTokenResponse({ claims: { email_verified: null, xms_edov: true } });
    expect((await entra.fetch(entraCallback)).headers.get("Location")).toBe(`${APP}/signed-in`);
  });

  it("an email of another domain, of a non-member, of a suspended member, of another organisation's member", async () => {
    const other = await newOrganisation();
    await addMember(other.id, "elsewhere@acme.example");
    const suspended = await addMember(1, "suspended@acme.example", "suspended");
    // the provider lets this account claim an acme.example-routed start, then answers with another domain's email
    const browser = new Browser();
    const callback = await signInAtProvider(browser, ARCHITECT);
    await nextTokenResponse({ claims: { email: "owner@enterprise.example" } });
    await expectRefused(await browser.fetch(callback), "access_denied", "email_domain");
    await expectRefused(await signIn(new Browser(), "nobody@acme.example"), "access_denied", "not_member");
    const refusedSuspended = await expectRefused(
      await signIn(new Browser(), "suspended@acme.example"),
      "access_denied",
      "suspended",
    );
    expect(refusedSuspended.memberId).toBe(suspended);
    await expectRefused(await signIn(new Browser(), "elsewhere@acme.example"), "access_denied", "not_member");
  });

  it("the IdP subject is remembered at the first SSO login and must match afterwards", async () => {
    const email = "viewer@acme.example";
    expect((await signIn(new Browser(), email)).status).toBe(302);
    const pinned = await env.DB.prepare(
      "SELECT sso_issuer, sso_subject FROM members WHERE email = ? AND organisation_id = 1",
    )
      .bind(email)
      .first<{ sso_issuer: string; sso_subject: string }>();
    expect(pinned?.sso_issuer).toBe(oidc.issuer);
    expect(pinned?.sso_subject).toMatch(/^user-/);

    // the email now belongs to another account at the provider
    const browser = new Browser();
    const callback = await signInAtProvider(browser, email);
    await nextTokenResponse({ claims: { sub: "user-someone-else" } });
    expect((await expectRefused(await browser.fetch(callback), "access_denied", "subject_mismatch")).memberId).toBe(
      2551,
    );
    expect((await signIn(new Browser(), email)).headers.get("Location")).toBe(`${APP}/signed-in`);
  });

  it("an organisation whose plan has no API access is refused", async () => {
    const org = await newOrganisation("free");
    await connectSso(org.identifier, { domains: [org.domain] });
    await addMember(org.id, `someone@${org.domain}`);
    await expectRefused(await signIn(new Browser(), `someone@${org.domain}`), "access_denied", "plan_not_eligible");
  });
});

describe("a provider that is down or hangs, storage that fails", () => {
  it("down: start answers the app temporarily_unavailable", async () => {
    const org = await newOrganisation();
    await connectSso(org.identifier, { issuer: oidc.downIssuer, domains: [org.domain] });
    const response = await new Browser().fetch(startUrl(`a@${org.domain}`));
    await expectRefused(response, "temporarily_unavailable", "idp_unavailable");
  });

  it("a discovery document without a usable https authorization endpoint: temporarily_unavailable, never a 500", async () => {
    const realFetch = globalThis.fetch;
    const issuer = "https://broken-idp.test";
    let endpoint = "";
    vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => {
      const url = urlOf(input);
      if (!url.startsWith(issuer)) return realFetch(input, init);
      const asked = url.replace("/.well-known/openid-configuration", "");
      return Promise.resolve(
        Response.json({ issuer: asked, authorization_endpoint: endpoint, jwks_uri: `${asked}/jwks` }),
      );
    });
    for (const [i, value] of ["not a url", "http://broken-idp.test/auth", "javascript:alert(1)"].entries()) {
      endpoint = value;
      const org = await newOrganisation();
      // an issuer of its own per case: each discovery document is fetched afresh
      await connectSso(org.identifier, { issuer: `${issuer}/${i}`, domains: [org.domain] });
      const response = await new Browser().fetch(startUrl(`a@${org.domain}`));
      await expectRefused(response, "temporarily_unavailable", "idp_unavailable");
    }
  });

  it("hanging at discovery: a bounded wait, then temporarily_unavailable", async () => {
    const org = await newOrganisation();
    await connectSso(org.identifier, { issuer: oidc.hangingIssuer, domains: [org.domain] });
    const started = Date.now();
    const response = await new Browser(gatewayWaiting(300)).fetch(startUrl(`a@${org.domain}`));
    expect(Date.now() - started).toBeLessThan(3000);
    await expectRefused(response, "temporarily_unavailable", "idp_unavailable");
  });

  it("D1 failing at the start or at the callback, KV at the callback: back to the app with temporarily_unavailable", async () => {
    const down = () => Promise.reject(new Error("injected failure"));
    const failingD1 = {
      ...env,
      DB: { prepare: () => ({ bind: () => ({ all: down, raw: down, run: down, first: down }) }), batch: down },
    } as unknown as typeof env;
    await expectRefused(
      await new Browser(gatewayWaiting(300, failingD1)).fetch(startUrl(ARCHITECT)),
      "temporarily_unavailable",
      "storage_unavailable",
    );
    const failingKv = { ...env, TOKENS: { get: down, put: down, delete: down, list: down } } as unknown as typeof env;
    const browser = new Browser(gatewayWaiting(300, failingKv));
    const callback = await browser.fetch(await signInAtProvider(browser, ARCHITECT));
    await expectRefused(callback, "temporarily_unavailable", "storage_unavailable");
    // D1 failing once the state is taken (the member's look-up): the spent state's app is told, not left on a 503
    const memberReadFails = { ...env, DB: hookedD1(/from "members"/, "before", down) };
    const another = new Browser(gatewayWaiting(300, memberReadFails));
    const afterState = await another.fetch(await signInAtProvider(another, ARCHITECT));
    await expectRefused(afterState, "temporarily_unavailable", "storage_unavailable");
  });

  it("hanging at the token endpoint: a bounded wait, then temporarily_unavailable", async () => {
    const browser = new Browser(gatewayWaiting(300));
    const callback = await signInAtProvider(browser, ARCHITECT);
    await nextTokenResponse({ hang: true });
    const started = Date.now();
    const response = await browser.fetch(callback);
    expect(Date.now() - started).toBeLessThan(3000);
    const audit = await expectRefused(response, "temporarily_unavailable", "idp_unavailable");
    expect(audit.detail.why).toMatch(/^token: /);
  });

  it("its key set answering 503: temporarily_unavailable, not a refused ID token", async () => {
    const discovery = await fetch(`${oidc.issuer}/.well-known/openid-configuration`);
    const { jwks_uri } = (await discovery.json()) as { jwks_uri: string };
    const realFetch = globalThis.fetch;
    vi.spyOn(globalThis, "fetch").mockImplementation((input, init) =>
      urlOf(input) === jwks_uri ? Promise.resolve(new Response("busy", { status: 503 })) : realFetch(input, init),
    );
    // a gateway of its own: no key set cached yet
    const browser = new Browser(gatewayWaiting(1000));
    const response = await browser.fetch(await signInAtProvider(browser, ARCHITECT));
    const audit = await expectRefused(response, "temporarily_unavailable", "idp_unavailable");
    expect(audit.detail.why).toMatch(/^jwks: /);
  });
});

describe("GET /authenticate/sso/start", () => {
  it("return_to off the allowlist is 400 problem+json, never a redirect", async () => {
    for (const returnTo of [
      "https://evil.test/",
      "https://app.test.evil.test/",
      "https://app.test@evil.test/",
      "//evil.test/",
      "javascript:alert(1)",
      "http://app.test/",
      "https://app.test/#fragment",
      "",
    ]) {
      const response = await fromNewIp(
        `/authenticate/sso/start?${new URLSearchParams({ email: ARCHITECT, return_to: returnTo })}`,
      );
      expect(response.status, returnTo).toBe(400);
      expect(response.headers.get("Location")).toBeNull();
      expect((await problem(response)).code).toBe("invalid_request");
    }
  });

  it("400 for a query without email or domain, with both, or a parameter twice; 405 for other methods", async () => {
    for (const query of [
      `return_to=${APP}/`,
      `email=${ARCHITECT}&domain=acme.example&return_to=${APP}/`,
      `email=${ARCHITECT}&email=${ARCHITECT}&return_to=${APP}/`,
      `email=not-an-email&return_to=${APP}/`,
    ]) {
      const response = await fromNewIp(`/authenticate/sso/start?${query}`);
      expect(response.status, query).toBe(400);
      expect((await problem(response)).code).toBe("invalid_request");
    }
    const post = await fromNewIp(`/authenticate/sso/start`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("Allow")).toBe("GET, HEAD");
  });

  it("by the organisation's domain; a domain without a connection goes back to the app as invalid_request", async () => {
    const byDomain = await fromNewIp(
      `/authenticate/sso/start?${new URLSearchParams({ domain: "acme.example", return_to: `${APP}/` })}`,
    );
    expect(byDomain.status, await byDomain.clone().text()).toBe(302);
    expect(new URL(byDomain.headers.get("Location")!).searchParams.has("login_hint")).toBe(false);
    const none = await new Browser().fetch(startUrl("someone@no-sso.example"));
    await expectRefused(none, "invalid_request", "no_connection");
  });
});

describe("an organisation that requires SSO", () => {
  it("refuses password logins with 403 sso_required whatever the password; earlier refresh tokens keep working", async () => {
    const org = await newOrganisation();
    await connectSso(org.identifier, { domains: [org.domain] });
    const email = `member@${org.domain}`;
    await addMember(org.id, email);
    const contractor = `contractor-${org.identifier}@example.org`;
    await addMember(org.id, contractor);
    const before = await postLogin({ email, password: SEED_PASSWORD });
    expect(before.status).toBe(200);
    const { refresh_token } = (await before.json()) as { refresh_token: string };

    await connectSso(org.identifier, { domains: [org.domain], required: true });
    const answers: Record<string, any>[] = [];
    for (const body of [
      { email, password: SEED_PASSWORD },
      { email, password: "wrong password" },
      { email: `nobody@${org.domain}`, password: "wrong password" },
      { email: "architect@acme.example", password: SEED_PASSWORD, domain: org.domain },
    ]) {
      const response = await postLogin(body);
      expect(response.status, JSON.stringify(body)).toBe(403);
      const { request_id: _, ...rest } = await problem(response);
      answers.push(rest);
    }
    expect(answers.every((answer) => JSON.stringify(answer) === JSON.stringify(answers[0]))).toBe(true);
    expect(answers[0]).toMatchObject({ code: "sso_required", type: "urn:gridgate:problem:sso_required" });
    expect(answers[0]!.detail).toContain("/authenticate/sso/start");

    // a member whose email is of another domain: refused once its password verified, never before
    expect((await postLogin({ email: contractor, password: "wrong password" })).status).toBe(401);
    const refused = await postLogin({ email: contractor, password: SEED_PASSWORD });
    expect(refused.status).toBe(403);
    expect((await problem(refused)).code).toBe("sso_required");

    const refreshed = await gateway("/authenticate/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token }),
    });
    expect(refreshed.status).toBe(200);
    // and SSO signs the member in
    expect((await signIn(new Browser(), email)).headers.get("Location")).toBe(`${APP}/signed-in`);
  });

  it("an optional connection leaves password logins as they are", async () => {
    expect((await postLogin({ email: ARCHITECT, password: SEED_PASSWORD })).status).toBe(200);
  });
});
