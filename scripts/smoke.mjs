// `npm run smoke`: a running gateway answers as documented: /health, a login, a proxied call, and (--rounds N) N rounds of
// log in → revoke all → log in at once → proxied call, every new token accepted and every old one refused within 60 s.
import { parseArgs } from "node:util";

const { values: options } = parseArgs({
  options: {
    gateway: { type: "string", default: process.env.GATEWAY_URL ?? "http://127.0.0.1:8787" },
    email: { type: "string", default: "architect@acme.example" },
    path: { type: "string", default: "/grids" },
    rounds: { type: "string", default: "0" },
    help: { type: "boolean", default: false },
  },
});
if (options.help) {
  console.log(`Usage: npm run smoke -- [--gateway URL] [--email E] [--path /grids] [--rounds N]
The password comes from SMOKE_PASSWORD (default: the local seed password). Logins are rate-limited per client IP:
a 429 is waited out as its Retry-After says.`);
  process.exit(0);
}
const gateway = options.gateway.replace(/\/$/, "");
const password = process.env.SMOKE_PASSWORD ?? "gridgate-dev-password";
const rounds = Number(options.rounds);
/** How long an old token may still work after the revocation. */
const REFUSAL_BOUND_MS = 60_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function fail(message) {
  console.error(`smoke: FAILED: ${message}`);
  process.exit(1);
}

async function call(path, init = {}) {
  try {
    return await fetch(gateway + path, { ...init, signal: AbortSignal.timeout(10_000) });
  } catch (error) {
    fail(`${path}: ${error.cause?.code ?? error.message} (is the gateway at ${gateway} running?)`);
  }
}

/** Logs in, waiting out a 429 as its Retry-After says; returns the access token and the time spent waiting. */
async function login() {
  let waitedMs = 0;
  for (;;) {
    const response = await call("/authenticate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: options.email, password }),
    });
    if (response.status === 429) {
      const wait = Number(response.headers.get("Retry-After") ?? 5);
      console.log(`  login rate-limited: waiting ${wait} s`);
      await sleep(wait * 1000);
      waitedMs += wait * 1000;
      continue;
    }
    if (response.status !== 200) fail(`login answered ${response.status}: ${await response.text()}`);
    return { token: (await response.json()).access_token, waitedMs };
  }
}

const proxied = (token) => call(options.path, { headers: { Authorization: `Bearer ${token}` } });

const health = await call("/health");
if (health.status !== 200) fail(`/health answered ${health.status}`);
console.log("GET /health: 200");
let { token } = await login();
console.log("POST /authenticate: 200");
const first = await proxied(token);
if (first.status !== 200) fail(`GET ${options.path} answered ${first.status}: ${await first.text()}`);
console.log(`GET ${options.path}: 200, X-Request-Id ${first.headers.get("X-Request-Id")}`);

let sameSecond = 0;
for (let round = 1; round <= rounds; round++) {
  const revoked = await call("/authenticate/revoke", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ all: true }),
  });
  const revokedAt = Date.now();
  if (revoked.status !== 200) fail(`round ${round}: revoke all answered ${revoked.status}`);
  const { token: fresh, waitedMs } = await login();
  if (Math.floor(Date.now() / 1000) === Math.floor(revokedAt / 1000)) sameSecond++;
  const answer = await proxied(fresh);
  if (answer.status !== 200) fail(`round ${round}: the token issued after the revocation answered ${answer.status}`);
  let refusedAfter;
  let checks = 0;
  for (;;) {
    checks++;
    const old = await proxied(token);
    if (old.status === 401) {
      refusedAfter = Date.now() - revokedAt;
      break;
    }
    if (Date.now() - revokedAt > REFUSAL_BOUND_MS) fail(`round ${round}: the old token still answers ${old.status}`);
    await sleep(1000);
  }
  const when = checks === 1 ? "at its first check" : `after ${checks} checks`;
  const waited = waitedMs > 0 ? ` (the new login waited ${waitedMs} ms for the login limit first)` : "";
  console.log(
    `round ${round}: new token 200, old token refused ${when}, ${refusedAfter} ms after the revocation${waited}`,
  );
  token = fresh;
}
if (rounds > 0)
  console.log(`${rounds}/${rounds} rounds passed (${sameSecond} with the new login in the revocation's second)`);
console.log("smoke: ok");
