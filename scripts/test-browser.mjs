// `npm run test:browser`: the demo web app in headless Chromium against a real gateway, demo origin and OpenID Provider.
// Starts its own gateway, demo origin, local OpenID Provider and web app servers on free ports (never 8787/8788/5173, so a
// running `npm run dev` is not disturbed), drives Debian's chromium-headless-shell through
// playwright-core, stops everything it started, and ends with `browser: N passed, N failed`.
import { existsSync, rmSync } from "node:fs";
import { chromium } from "playwright-core";
import {
  ROOT,
  freePort,
  gatewayWorker,
  originWorker,
  prepareLocal,
  serveWebApp,
  sleep,
  startOidcProvider,
  startWorker,
  stopGroups,
  waitForOk,
} from "./lib/dev-stack.mjs";

/** Whole run, start-up included; past it everything is stopped and the run fails. */
const RUN_TIMEOUT_MS = 300_000;
const TEST_TIMEOUT_MS = 30_000;
const PERSIST_TO = ".wrangler/browser-test";
const COOKIE = "__Secure-gridgate-refresh";
/** Debian's chromium-headless-shell on PATH (or CHROMIUM_PATH); Playwright's own browser downloads are not used. */
const EXECUTABLE =
  process.env.CHROMIUM_PATH ??
  (process.env.PATH ?? "")
    .split(":")
    .map((dir) => `${dir}/chromium-headless-shell`)
    .find((path) => existsSync(path));
const VERBOSE = process.env.BROWSER_TEST_VERBOSE === "1";

const log = (message) => console.log(`[browser] ${message}`);

const ports = {};
for (const name of ["gateway", "origin", "gatewayInspector", "originInspector", "web", "foreign", "oidc"]) {
  ports[name] = await freePort();
}
const GATEWAY = `http://127.0.0.1:${ports.gateway}`;
const APP = `http://127.0.0.1:${ports.web}`;
/** Same server, other host name: allowed by CORS_ORIGINS but cross-site to the gateway on 127.0.0.1. */
const APP_LOCALHOST = `http://localhost:${ports.web}`;
/** A page on an origin that is not on CORS_ORIGINS (same site as the gateway: only the port differs). */
const FOREIGN = `http://127.0.0.1:${ports.foreign}`;
/** The local OpenID Provider, connected to the seeded organisation m7l9hw (acme.example). */
const OIDC = `http://127.0.0.1:${ports.oidc}`;

const children = [];
const servers = [];
let browser;
let stopping = false;

async function stopAll() {
  if (stopping) return;
  stopping = true;
  await browser?.close().catch(() => {});
  for (const server of servers) server.close();
  await stopGroups(children);
}

const watchdog = setTimeout(async () => {
  console.error(`[browser] the run took over ${RUN_TIMEOUT_MS / 1000} s; stopping everything`);
  await stopAll();
  console.log("browser: 0 passed, 1 failed");
  process.exit(1);
}, RUN_TIMEOUT_MS);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, async () => {
    await stopAll();
    process.exit(130);
  });
}

// ---------------------------------------------------------------------------------------------
// The checks. Each gets a fresh browser context (its own cookie jar) unless it says otherwise.

const openContexts = new Set();

/** A browser context (its own cookie jar), closed after the test whatever happens. */
async function newContext() {
  const context = await browser.newContext();
  openContexts.add(context);
  context.on("close", () => openContexts.delete(context));
  return context;
}

/** A context and page on the web app, signed in as `email`, the grids listed. */
async function signedIn(email = "architect@acme.example", base = APP) {
  const context = await newContext();
  const page = await context.newPage();
  await page.goto(`${base}/`);
  await page.waitForSelector("body[data-ready=true]");
  await page.selectOption("#email", email);
  await page.click("#login");
  await page.waitForSelector("#session[data-state=signed-in]");
  return { context, page };
}

let architect;

/**
 * The architect's session in the app, shared by the checks that leave it signed in: the gateway's
 * per-IP login limit (10 a minute, all from 127.0.0.1 here) would refuse one login per check.
 */
async function architectSession() {
  if (architect && (await architect.page.getAttribute("#session", "data-state").catch(() => "")) === "signed-in") {
    return architect;
  }
  await architect?.context.close().catch(() => {});
  architect = await signedIn();
  openContexts.delete(architect.context);
  return architect;
}

async function refreshCookie(context) {
  const cookies = await context.cookies(GATEWAY + "/authenticate");
  return cookies.find((cookie) => cookie.name === COOKIE);
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function gridCount(page) {
  await page.waitForSelector("#grids[data-count]");
  return Number(await page.getAttribute("#grids", "data-count"));
}

const tests = [];
const test = (name, run) => tests.push({ name, run });

test("first visit: the sign-in form, and no error or message before anyone signed in", async () => {
  const context = await newContext();
  const page = await context.newPage();
  await page.goto(`${APP}/`);
  await page.waitForSelector("body[data-ready=true]");
  check((await page.getAttribute("#session", "data-state")) === "signed-out", "not signed out");
  check(await page.isVisible("#login-form"), "no sign-in form");
  check(await page.isHidden("#problem"), `a problem is shown: ${await page.textContent("#problem")}`);
  const message = (await page.textContent("#log")).trim();
  check(message === "", `the page says: ${message}`);
  await context.close();
});

test("login: the app signs in and lists the grids through gateway and origin", async () => {
  const { context, page } = await architectSession();
  check((await gridCount(page)) >= 2, "fewer than the 2 seeded grids listed");
  check((await page.textContent("#grids")).includes("Ground floor"), "seeded grid not shown");
  check((await page.textContent("#session")).includes('scope "architect"'), "scope not shown");
});

test("the refresh cookie: HttpOnly, Secure (accepted over http://127.0.0.1), SameSite=Strict, Path=/authenticate", async () => {
  const { context } = await architectSession();
  const cookie = await refreshCookie(context);
  check(cookie, "Chromium did not store the refresh cookie");
  check(cookie.httpOnly && cookie.secure, `not HttpOnly + Secure: ${JSON.stringify(cookie)}`);
  check(cookie.sameSite === "Strict", `SameSite is ${cookie.sameSite}`);
  check(cookie.path === "/authenticate", `path is ${cookie.path}`);
  check(cookie.domain === "127.0.0.1", `domain is ${cookie.domain}`);
  const lifetime = cookie.expires - Date.now() / 1000;
  check(lifetime > 604_700 && lifetime <= 604_800, `expires in ${lifetime} s, not the refresh lifetime`);
});

test("the refresh token is never readable from JavaScript (document.cookie, response bodies)", async () => {
  const context = await newContext();
  const page = await context.newPage();
  await page.goto(`${APP}/`);
  await page.waitForSelector("body[data-ready=true]");
  const loginResponse = page.waitForResponse((response) => response.url() === `${GATEWAY}/authenticate`);
  await page.click("#login");
  const body = await (await loginResponse).json();
  await page.waitForSelector("#session[data-state=signed-in]");
  const cookie = await refreshCookie(context);
  check(cookie, "no refresh cookie");
  check(!("refresh_token" in body) && !JSON.stringify(body).includes(cookie.value), "login body holds the token");
  check(!(await page.evaluate(() => document.cookie)).includes(COOKIE), "document.cookie of the app shows it");
  // the page itself asks for a refresh: the answer it can read holds no refresh token either
  const seen = await page.evaluate(async (gateway) => {
    const response = await fetch(`${gateway}/authenticate/refresh`, { method: "POST", credentials: "include" });
    return { status: response.status, text: await response.text(), cookie: document.cookie };
  }, GATEWAY);
  const rotated = await refreshCookie(context);
  check(seen.status === 200, `page refresh answered ${seen.status}`);
  const refreshed = JSON.parse(seen.text);
  check(!("refresh_token" in refreshed) && !seen.text.includes(rotated.value), "refresh body holds the token");
  check(!seen.cookie.includes(COOKIE), "document.cookie shows it after a refresh");
  // even a page of the gateway's own origin, on the cookie's path, cannot read it
  const gatewayPage = await context.newPage();
  await gatewayPage.goto(`${GATEWAY}/authenticate`);
  check(!(await gatewayPage.evaluate(() => document.cookie)).includes(COOKIE), "document.cookie on the gateway");
  await context.close();
});

test("an API call: creating a grid as the architect (201) shows it in the list", async () => {
  const { context, page } = await architectSession();
  const before = await gridCount(page);
  await page.fill("#grid-name", "Browser test grid");
  const created = page.waitForResponse(
    (response) => response.url() === `${GATEWAY}/grids` && response.request().method() === "POST",
  );
  await page.click("#create");
  check((await created).status() === 201, `create answered ${(await created).status()}`);
  await page.waitForFunction((n) => Number(document.querySelector("#grids").dataset.count) === n + 1, before);
  check((await page.textContent("#grids")).includes("Browser test grid"), "new grid not listed");
});

test("creating a grid shows a visible confirmation naming it, still there once the list is reloaded", async () => {
  const { page } = await architectSession();
  await page.fill("#grid-name", "Confirmed grid");
  const created = page.waitForResponse(
    (response) => response.url() === `${GATEWAY}/grids` && response.request().method() === "POST",
  );
  await page.click("#create");
  const { grid } = await (await created).json();
  await page.waitForFunction(() => document.querySelector("#grids").textContent.includes("Confirmed grid"));
  await page.waitForSelector("#notice", { state: "visible", timeout: 5000 });
  const notice = await page.textContent("#notice");
  check(notice.includes("Confirmed grid") && notice.includes(String(grid.id)), `the confirmation says: ${notice}`);
});

test("403: the viewer's create is refused and the problem is shown (code, WWW-Authenticate readable)", async () => {
  const { context, page } = await signedIn("viewer@acme.example");
  await page.click("#create");
  await page.waitForSelector("#problem[data-status='403']");
  const text = await page.textContent("#problem");
  check(text.includes("insufficient_scope"), `problem shows: ${text}`);
  check(text.includes('error="insufficient_scope"'), "WWW-Authenticate not exposed to the page");
  if (process.env.BROWSER_TEST_SCREENSHOT)
    await page.screenshot({ path: process.env.BROWSER_TEST_SCREENSHOT, fullPage: true });
  await context.close();
});

test("refresh by cookie, twice: each rotation sets a new cookie and the API keeps working", async () => {
  const { context, page } = await architectSession();
  const values = [(await refreshCookie(context)).value];
  for (let i = 0; i < 2; i++) {
    const answered = page.waitForResponse(`${GATEWAY}/authenticate/refresh`);
    await page.click("#refresh");
    check((await answered).status() === 200, `refresh ${i + 1} answered ${(await answered).status()}`);
    await page.waitForSelector("#session[data-state=signed-in]");
    values.push((await refreshCookie(context)).value);
  }
  check(new Set(values).size === 3, "the cookie did not change on every rotation");
  const listed = page.waitForResponse(`${GATEWAY}/grids`);
  await page.click("#load");
  check((await listed).status() === 200, "API call after two rotations failed");
});

test("silent refresh: a 401 from the API refreshes by cookie and retries; a reload keeps the session", async () => {
  const { context, page } = await architectSession();
  const before = (await refreshCookie(context)).value;
  await page.evaluate(() => window.gridgateDemo.breakAccessToken());
  const statuses = [];
  page.on("response", (response) => {
    if (response.url().startsWith(GATEWAY))
      statuses.push(`${response.request().method()} ${new URL(response.url()).pathname} ${response.status()}`);
  });
  const retried = page.waitForResponse((r) => r.url() === `${GATEWAY}/grids` && r.status() === 200);
  await page.click("#load");
  await retried;
  // Playwright's response events may trail the one awaited: give them a moment
  for (let i = 0; i < 40 && !statuses.includes("GET /grids 401"); i++) await sleep(50);
  check(
    statuses.includes("GET /grids 401") && statuses.includes("POST /authenticate/refresh 200"),
    statuses.join(", "),
  );
  check((await refreshCookie(context)).value !== before, "no rotation happened");
  await page.reload();
  await page.waitForSelector("body[data-ready=true]");
  check((await page.getAttribute("#session", "data-state")) === "signed-in", "a reload lost the session");
  page.removeAllListeners("response");
  check((await gridCount(page)) >= 2, "no grids after the reload");
});

test("a reload still shows who is signed in; the page stores that email and nothing else", async () => {
  const { context, page } = await architectSession();
  check((await page.textContent("#session")).includes("architect@acme.example"), "the email is not shown");
  await page.reload();
  await page.waitForSelector("body[data-ready=true]");
  const label = await page.textContent("#session");
  check(label.includes("architect@acme.example"), `after the reload: ${label}`);
  const stored = await page.evaluate(() => ({
    local: Object.values(localStorage),
    session: Object.values(sessionStorage),
  }));
  check(
    JSON.stringify(stored) === JSON.stringify({ local: ["architect@acme.example"], session: [] }),
    `stored: ${JSON.stringify(stored)}`,
  );
  check(!JSON.stringify(stored).includes((await refreshCookie(context)).value), "the refresh token is stored");
});

test("logout: revokes the session and clears the cookie; a reload stays signed out", async () => {
  const { context, page } = await signedIn();
  const cookie = (await refreshCookie(context)).value;
  const revoked = page.waitForResponse(`${GATEWAY}/authenticate/revoke`);
  await page.click("#logout");
  check((await revoked).status() === 200, "revoke failed");
  await page.waitForSelector("#session[data-state=signed-out]");
  check((await refreshCookie(context)) === undefined, "cookie still stored");
  check((await page.evaluate(() => localStorage.length)) === 0, "the email is still stored");
  await page.reload();
  await page.waitForSelector("body[data-ready=true]");
  check((await page.getAttribute("#session", "data-state")) === "signed-out", "signed in again after logout");
  // the revoked token is dead at the gateway too (presented from the app's origin, in the body)
  const status = await page.evaluate(
    async ({ gateway, token }) =>
      (
        await fetch(`${gateway}/authenticate/refresh`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ refresh_token: token }),
        })
      ).status,
    { gateway: GATEWAY, token: cookie },
  );
  check(status === 400, `revoked token refreshed: ${status}`);
  await context.close();
});

test("a page on a non-allowed origin cannot read a login response", async () => {
  const context = await newContext();
  const page = await context.newPage();
  await page.goto(`${FOREIGN}/blank`);
  const outcomes = await page.evaluate(async (gateway) => {
    const attempt = (init) =>
      fetch(`${gateway}/authenticate`, { method: "POST", credentials: "include", ...init }).then(
        async (response) => `read ${response.status}: ${await response.text()}`,
        (error) => `blocked (${error.name})`,
      );
    return [
      // JSON needs a preflight: the gateway refuses it (403, no CORS headers)
      await attempt({
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ email: "architect@acme.example", password: "gridgate-dev-password" }),
      }),
      // a form post needs none: the gateway answers, but without CORS headers the page cannot read it
      await attempt({
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: "email=architect%40acme.example&password=gridgate-dev-password",
      }),
    ];
  }, GATEWAY);
  check(
    outcomes.every((outcome) => outcome.startsWith("blocked")),
    outcomes.join(" | "),
  );
  check((await refreshCookie(context)) === undefined, "a foreign origin's login stored a refresh cookie");
  await context.close();
});

test("cookie refresh with a foreign Origin is refused (403), nothing rotated", async () => {
  const { context, page } = await architectSession();
  const before = (await refreshCookie(context)).value;
  const foreign = await context.newPage();
  await foreign.goto(`${FOREIGN}/blank`);
  // Playwright reports a CORS-blocked fetch as a failed request without its response: ask Chromium (CDP)
  const cdp = await context.newCDPSession(foreign);
  await cdp.send("Network.enable");
  const network = { ids: new Set(), status: undefined, cookieSent: false };
  cdp.on("Network.requestWillBeSent", ({ requestId, request }) => {
    if (request.url === `${GATEWAY}/authenticate/refresh`) network.ids.add(requestId);
  });
  cdp.on("Network.requestWillBeSentExtraInfo", ({ headers }) => {
    if (Object.entries(headers).some(([name, value]) => name.toLowerCase() === "cookie" && value.includes(COOKIE)))
      network.cookieSent = true;
  });
  cdp.on("Network.responseReceivedExtraInfo", ({ requestId, statusCode }) => {
    if (network.ids.has(requestId)) network.status = statusCode;
  });
  // a simple POST (no preflight): same site as the gateway, so Chromium sends the SameSite=Strict cookie
  const outcome = await foreign.evaluate(
    async (gateway) =>
      fetch(`${gateway}/authenticate/refresh`, { method: "POST", credentials: "include" }).then(
        (response) => `read ${response.status}`,
        (error) => `blocked (${error.name})`,
      ),
    GATEWAY,
  );
  for (let i = 0; i < 50 && network.status === undefined; i++) await sleep(50);
  check(network.status === 403, `gateway answered ${network.status}`);
  check(network.cookieSent, "the cookie was not even sent");
  check(outcome.startsWith("blocked"), `the foreign page could ${outcome}`);
  await foreign.close();
  check((await refreshCookie(context)).value === before, "the cookie changed");
  const ok = page.waitForResponse(`${GATEWAY}/authenticate/refresh`);
  await page.click("#refresh");
  check((await ok).status() === 200, "the session no longer refreshes from the app");
});

test("cookie refresh without an Origin header is refused (403), nothing rotated", async () => {
  const { context, page } = await architectSession();
  const before = (await refreshCookie(context)).value;
  // the context's own HTTP client: the browser's cookie jar, no Origin header
  const response = await context.request.post(`${GATEWAY}/authenticate/refresh`);
  check(response.status() === 403, `gateway answered ${response.status()}`);
  check((await response.json()).code === "origin_not_allowed", "not origin_not_allowed");
  check((await refreshCookie(context)).value === before, "the cookie changed");
  const ok = page.waitForResponse(`${GATEWAY}/authenticate/refresh`);
  await page.click("#refresh");
  check((await ok).status() === 200, "the session no longer refreshes from the app");
});

test("Sign in with SSO: the provider's own login page, back signed in; the API, a cookie refresh, sign-out", async () => {
  const context = await newContext();
  const page = await context.newPage();
  await page.goto(`${APP}/`);
  await page.waitForSelector("body[data-ready=true]");
  await page.selectOption("#email", "builder@acme.example");
  await page.click("#sso");
  await page.waitForURL((url) => url.href.startsWith(`${OIDC}/interaction/`));
  check((await page.inputValue("input[name=login]")) === "builder@acme.example", "the provider did not get the hint");
  await page.fill("input[name=password]", "gridgate-dev-password");
  await page.click("#sign-in");
  await page.waitForURL((url) => url.href.startsWith(APP));
  await page.waitForSelector("body[data-ready=true]");
  await page.waitForSelector("#session[data-state=signed-in]");
  check(page.url() === `${APP}/`, `landed on ${page.url()}`);
  const label = await page.textContent("#session");
  check(label.includes("builder@acme.example") && label.includes('scope "builder"'), `the page says: ${label}`);
  check((await gridCount(page)) >= 2, "no grids listed after SSO");
  const cookie = await refreshCookie(context);
  check(cookie?.httpOnly && cookie.sameSite === "Strict", `refresh cookie: ${JSON.stringify(cookie)}`);
  const history = await page.evaluate(() => [location.href, document.referrer]);
  check(!/ggr_|eyJ|code=/.test(history.join(" ")), `a token or code in the page's URLs: ${history}`);
  const refreshed = page.waitForResponse(`${GATEWAY}/authenticate/refresh`);
  await page.click("#refresh");
  check((await refreshed).status() === 200, "refresh by cookie after SSO failed");
  check((await refreshCookie(context)).value !== cookie.value, "the cookie did not rotate");
  const revoked = page.waitForResponse(`${GATEWAY}/authenticate/revoke`);
  await page.click("#logout");
  check((await revoked).status() === 200, "sign-out failed");
  await page.waitForSelector("#session[data-state=signed-out]");
  check((await refreshCookie(context)) === undefined, "cookie still stored after sign-out");
  await context.close();
});

test("Sign in with SSO for an account without it: back on the app with the error shown, no session", async () => {
  const context = await newContext();
  const page = await context.newPage();
  await page.goto(`${APP}/`);
  await page.waitForSelector("body[data-ready=true]");
  await page.selectOption("#email", "free@free.example");
  await page.click("#sso");
  await page.waitForSelector("#problem[data-code=invalid_request]");
  check((await page.textContent("#problem")).includes("free.example"), await page.textContent("#problem"));
  check(page.url() === `${APP}/`, `the error stayed in the URL: ${page.url()}`);
  check((await page.getAttribute("#session", "data-state")) === "signed-out", "signed in after a refused SSO");
  await context.close();
});

test("SameSite: from http://localhost (cross-site to 127.0.0.1) login works but Chromium keeps no cookie", async () => {
  const { context, page } = await signedIn("architect@acme.example", APP_LOCALHOST);
  check((await gridCount(page)) >= 2, "API calls failed from localhost");
  check((await refreshCookie(context)) === undefined, "Chromium stored a SameSite=Strict cookie cross-site");
  await context.close();
});

// ---------------------------------------------------------------------------------------------

async function start() {
  rmSync(`${ROOT}${PERSIST_TO}`, { recursive: true, force: true });
  prepareLocal({ log, persistTo: PERSIST_TO, ssoIssuer: OIDC });
  const callbacks = {
    onLine: (worker, line) => VERBOSE && console.log(`[${worker.name}] ${line}`),
    onExit: (worker, code, signal) => {
      if (!stopping) console.error(`[browser] ${worker.name} exited early (${signal ?? `exit ${code}`})`);
    },
  };
  const origin = originWorker({
    port: ports.origin,
    inspector: ports.originInspector,
    vars: { GATEWAY_JWKS_URL: `${GATEWAY}/.well-known/jwks.json` },
  });
  children.push(startWorker(origin, callbacks));
  const vars = { CORS_ORIGINS: `${APP},${APP_LOCALHOST}`, ORIGIN_URL: `http://127.0.0.1:${ports.origin}` };
  const gateway = gatewayWorker({
    port: ports.gateway,
    inspector: ports.gatewayInspector,
    vars,
    persistTo: PERSIST_TO,
  });
  children.push(startWorker(gateway, callbacks));
  children.push(
    startOidcProvider({ port: ports.oidc, redirectUris: [`${GATEWAY}/authenticate/sso/callback`] }, callbacks),
  );
  servers.push(await serveWebApp({ port: ports.web, gateway: GATEWAY }));
  servers.push(await serveWebApp({ port: ports.foreign, gateway: GATEWAY }));
  const cancelled = () => stopping || children.some((child) => child.exited);
  if (!(await waitForOk(`${GATEWAY}/health`, { timeoutMs: 90_000, cancelled }))) {
    throw new Error("the gateway did not come up (BROWSER_TEST_VERBOSE=1 shows the workers' output)");
  }
  // the demo origin answers 401 to anything without an assertion: wait until it answers at all
  for (let i = 0; ; i++) {
    const answered = await fetch(`http://127.0.0.1:${ports.origin}/grids`).then(
      () => true,
      () => false,
    );
    if (answered) break;
    if (i > 200 || cancelled()) throw new Error("the demo origin did not come up");
    await sleep(300);
  }
  if (!(await waitForOk(`${OIDC}/.well-known/openid-configuration`, { timeoutMs: 30_000, cancelled }))) {
    throw new Error("the local OpenID Provider did not come up");
  }
  if (!EXECUTABLE)
    throw new Error("chromium-headless-shell is not on PATH (apt-get install -y chromium-headless-shell)");
  browser = await chromium.launch({ executablePath: EXECUTABLE, headless: true });
  log(
    `gateway ${GATEWAY}, web app ${APP} (also ${APP_LOCALHOST}), foreign page ${FOREIGN}, OpenID Provider ${OIDC}; ${await browser.version()}`,
  );
}

let passed = 0;
let failed = 0;
try {
  await start();
  const only = process.env.BROWSER_TEST_ONLY;
  for (const { name, run } of tests.filter((t) => !only || t.name.includes(only))) {
    const started = Date.now();
    try {
      await Promise.race([
        run(),
        sleep(TEST_TIMEOUT_MS).then(() => {
          throw new Error(`timed out after ${TEST_TIMEOUT_MS / 1000} s`);
        }),
      ]);
      passed++;
      console.log(`  ✓ ${name} (${Date.now() - started} ms)`);
    } catch (error) {
      failed++;
      console.log(`  ✗ ${name}\n      ${error.message.split("\n")[0]}`);
    } finally {
      await Promise.all([...openContexts].map((context) => context.close().catch(() => {})));
    }
  }
} catch (error) {
  failed++;
  console.error(`[browser] could not start: ${error.message}`);
} finally {
  clearTimeout(watchdog);
  await architect?.context.close().catch(() => {});
  await stopAll();
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
