// Gridgate demo web app: a browser client of the gateway, no build step, no dependencies.
//
// - The access token is kept in this module's memory only (never localStorage, never a cookie).
// - The one thing the page stores (localStorage) is the signed-in email, so a reload can still show it.
// - The refresh token is an HttpOnly cookie the gateway sets (path /authenticate); this code never
//   sees it. Calls that need it are sent with `credentials: "include"`.
// - The session is refreshed silently when the access token is near expiry, when a call answers 401,
//   and once at start-up (so a reload keeps you signed in, and a single sign-on that came back ends signed in).
// - "Sign in with SSO" leaves for the gateway's /authenticate/sso/start, which sends the browser to the
//   organisation's identity provider and back here with the refresh cookie set (or `error` in the query).

/** Refresh this many seconds before the access token expires. */
const REFRESH_MARGIN_SECONDS = 60;

const $ = (selector) => document.querySelector(selector);

/** Where the gateway is: `config.json` beside this page (written by `npm run dev`), else the dev default. */
async function gatewayBase() {
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (response.ok) {
      const { gateway } = await response.json();
      if (typeof gateway === "string") return gateway.replace(/\/$/, "");
    }
  } catch {
    // no config.json: served by something else
  }
  return "http://127.0.0.1:8787";
}

const GATEWAY = await gatewayBase();

/** The localStorage key of the signed-in email: the only thing this page stores, never a token. */
const EMAIL_KEY = "gridgate-demo-email";

/** The session as this page knows it: the access token and when it expires (ms), never the refresh token. */
const session = { accessToken: undefined, expiresAt: 0, scope: "", email: localStorage.getItem(EMAIL_KEY) ?? "" };
let refreshTimer;
let refreshing;

function log(message) {
  $("#log").textContent = `${new Date().toLocaleTimeString()} · ${message}`;
}

/** Shows an RFC 9457 problem (or any failed response) the way the gateway or the origin sent it. */
async function showProblem(response, what) {
  const box = $("#problem");
  let body = {};
  try {
    body = await response.json();
  } catch {
    // not JSON
  }
  const challenge = response.headers.get("WWW-Authenticate");
  box.replaceChildren();
  const heading = document.createElement("strong");
  heading.textContent = `${what}: ${response.status} ${body.title ?? body.error ?? response.statusText}`;
  const detail = document.createElement("p");
  detail.textContent = body.detail ?? "";
  const meta = document.createElement("p");
  meta.className = "problem-meta";
  meta.textContent = [
    body.code && `code: ${body.code}`,
    challenge && `WWW-Authenticate: ${challenge}`,
    `X-Request-Id: ${response.headers.get("X-Request-Id") ?? "?"}`,
  ]
    .filter(Boolean)
    .join(" · ");
  box.append(heading, detail, meta);
  box.dataset.status = String(response.status);
  box.dataset.code = body.code ?? "";
  box.hidden = false;
}

function clearProblem() {
  $("#problem").hidden = true;
  $("#problem").dataset.status = "";
  $("#notice").hidden = true;
}

/** A confirmation that stays on screen until the next action. */
function notify(message) {
  $("#notice").textContent = message;
  $("#notice").hidden = false;
}

function render() {
  const signedIn = session.accessToken !== undefined;
  $("#login-view").hidden = signedIn;
  $("#app-view").hidden = !signedIn;
  const label = $("#session");
  label.dataset.state = signedIn ? "signed-in" : "signed-out";
  label.textContent = signedIn
    ? `Signed in${session.email ? ` as ${session.email}` : ""} · scope "${session.scope}" · access token valid until ${new Date(session.expiresAt).toLocaleTimeString()}`
    : "Signed out.";
}

/** Takes a token response (login or refresh): the access token into memory, a timer for the next refresh. */
function accept(body) {
  session.accessToken = body.access_token;
  session.expiresAt = Date.now() + body.expires_in * 1000;
  session.scope = body.scope;
  clearTimeout(refreshTimer);
  const wait = Math.max(5, body.expires_in - REFRESH_MARGIN_SECONDS) * 1000;
  refreshTimer = setTimeout(() => refresh().catch(() => {}), wait);
  render();
}

function forget() {
  session.accessToken = undefined;
  session.expiresAt = 0;
  session.email = "";
  localStorage.removeItem(EMAIL_KEY);
  clearTimeout(refreshTimer);
  render();
}

/** `POST /authenticate/refresh` by cookie; one at a time. Resolves true when the session continues. */
function refresh() {
  refreshing ??= (async () => {
    try {
      const response = await fetch(`${GATEWAY}/authenticate/refresh`, { method: "POST", credentials: "include" });
      if (!response.ok) {
        // before anyone signed in (a first visit, or after signing out) there is no session to report as ended
        const hadSession = session.accessToken !== undefined || session.email !== "";
        forget();
        if (hadSession) log(`session ended (refresh answered ${response.status})`);
        return false;
      }
      accept(await response.json());
      log("session refreshed");
      return true;
    } finally {
      refreshing = undefined;
    }
  })();
  return refreshing;
}

/** A call to the API through the gateway: refreshes first when near expiry, and once more on a 401. */
async function api(path, init = {}) {
  if (session.accessToken === undefined || session.expiresAt - Date.now() < REFRESH_MARGIN_SECONDS * 1000) {
    if (!(await refresh())) throw new Error("signed out");
  }
  const call = () =>
    fetch(`${GATEWAY}${path}`, {
      ...init,
      headers: { ...init.headers, Authorization: `Bearer ${session.accessToken}` },
    });
  let response = await call();
  if (response.status === 401 && (await refresh())) response = await call();
  return response;
}

async function loadGrids() {
  const response = await api("/grids");
  if (!response.ok) return showProblem(response, "Listing grids");
  const { grids } = await response.json();
  const rows = grids.map((grid) => {
    const row = document.createElement("tr");
    for (const value of [grid.id, grid.name, `${grid.rows} × ${grid.columns}`, grid.createdBy ?? "—"]) {
      const cell = document.createElement("td");
      cell.textContent = value;
      row.append(cell);
    }
    return row;
  });
  $("#grids").replaceChildren(...rows);
  $("#grids").dataset.count = String(grids.length);
  log(`${grids.length} grids`);
}

async function createGrid(form) {
  clearProblem();
  const data = new FormData(form);
  const response = await api("/grids", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      name: data.get("name"),
      rows: Number(data.get("rows")),
      columns: Number(data.get("columns")),
    }),
  });
  if (!response.ok) return showProblem(response, "Creating a grid");
  const { grid } = await response.json();
  notify(`Created grid ${grid.id} "${grid.name}" (${grid.rows} × ${grid.columns}).`);
  await loadGrids();
}

async function login(form) {
  clearProblem();
  const data = new FormData(form);
  const response = await fetch(`${GATEWAY}/authenticate`, {
    method: "POST",
    credentials: "include", // so the browser stores the refresh cookie of this cross-origin response
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email: data.get("email"), password: data.get("password") }),
  });
  if (!response.ok) return showProblem(response, "Signing in");
  session.email = String(data.get("email"));
  localStorage.setItem(EMAIL_KEY, session.email);
  accept(await response.json());
  log("signed in");
  await loadGrids();
}

/** Single sign-on: the gateway sends the browser to the identity provider and back to this page. */
async function ssoSignIn() {
  clearProblem();
  const email = $("#email").value;
  localStorage.setItem(EMAIL_KEY, email);
  const returnTo = `${location.origin}${location.pathname}`;
  location.assign(`${GATEWAY}/authenticate/sso/start?${new URLSearchParams({ email, return_to: returnTo })}`);
}

/** A single sign-on that came back refused: shows `error` and `error_description`, then drops them from the URL. */
function showSsoOutcome() {
  const params = new URLSearchParams(location.search);
  const error = params.get("error");
  if (error === null) return;
  history.replaceState(null, "", location.pathname);
  localStorage.removeItem(EMAIL_KEY);
  session.email = "";
  const box = $("#problem");
  const heading = document.createElement("strong");
  heading.textContent = `Single sign-on: ${error}`;
  const detail = document.createElement("p");
  detail.textContent = params.get("error_description") ?? "";
  box.replaceChildren(heading, detail);
  box.dataset.status = "";
  box.dataset.code = error;
  box.hidden = false;
}

async function logout() {
  clearProblem();
  await fetch(`${GATEWAY}/authenticate/revoke`, { method: "POST", credentials: "include" });
  forget();
  $("#grids").replaceChildren();
  log("signed out");
}

/** Runs a UI action, reporting network failures (e.g. a gateway that is down or refuses this origin). */
function action(run) {
  return (event) => {
    event?.preventDefault();
    run(event?.target).catch((error) => {
      log(`failed: ${error.message}`);
      render();
    });
  };
}

$("#login-form").addEventListener("submit", action(login));
$("#sso").addEventListener("click", action(ssoSignIn));
$("#create-form").addEventListener("submit", action(createGrid));
$("#load").addEventListener("click", action(loadGrids));
$("#refresh").addEventListener("click", action(refresh));
$("#logout").addEventListener("click", action(logout));

/** For the browser tests and the curious: break the in-memory access token to watch the 401 → refresh → retry path. */
window.gridgateDemo = {
  gateway: GATEWAY,
  breakAccessToken() {
    session.accessToken = "not-a-valid-token";
  },
};

// Start-up: a reload keeps the session if the refresh cookie is still good; so does a single sign-on that came back.
showSsoOutcome();
try {
  if (await refresh()) await loadGrids();
  else render();
} catch (error) {
  log(`gateway not reachable at ${GATEWAY}: ${error.message}`);
  render();
}
document.body.dataset.ready = "true";
