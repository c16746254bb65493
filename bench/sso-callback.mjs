// `npm run bench:sso`: the gateway's own CPU for GET /authenticate/sso/callback. Runs the gateway under
// `wrangler dev` (free ports, a fresh local D1, no per-IP login limiter) and the local OpenID Provider in this
// process; signs in BENCH_SSO_BATCH browsers at the provider, then sends their callbacks and reads the workerd
// process's user+system CPU (/proc/<pid>/stat) around them, against as many GET /health requests and password
// logins. Loopback only; about a minute. Result and method: bench/README.md § 6.
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { startOidcProvider } from "../scripts/oidc-provider.mjs";
import { LOCAL_SSO_CLIENT } from "../scripts/seed-data.ts";
import {
  ROOT,
  freePort,
  gatewayWorker,
  prepareLocal,
  startWorker,
  stopGroups,
  waitForOk,
} from "../scripts/lib/dev-stack.mjs";

const BATCH = Number(process.env.BENCH_SSO_BATCH ?? 50);
const BATCHES = Number(process.env.BENCH_SSO_BATCHES ?? 6);
const PERSIST_TO = ".wrangler/bench-sso";
const CONFIG = "wrangler.bench-sso.toml";
const APP = "http://127.0.0.1:5999";
const TICKS_PER_SECOND = 100;

/** user+system CPU of a process, in ms (clock ticks of /proc/<pid>/stat). */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

function workerdOf(groupId) {
  const lines = execFileSync("ps", ["-eo", "pid=,pgid=,comm="], { encoding: "utf8" }).trim().split("\n");
  const row = lines
    .map((line) => line.trim().split(/\s+/))
    .find(([, pgid, comm]) => Number(pgid) === groupId && comm === "workerd");
  if (!row) throw new Error("no workerd process in the gateway's process group");
  return Number(row[0]);
}

/** A browser: cookies per host, no redirects followed. */
function browser() {
  const jars = new Map();
  return async (url, init = {}) => {
    const { host } = new URL(url);
    const jar = jars.get(host) ?? new Map();
    jars.set(host, jar);
    const headers = new Headers(init.headers);
    if (jar.size > 0) headers.set("Cookie", [...jar].map(([name, value]) => `${name}=${value}`).join("; "));
    const response = await fetch(url, { ...init, headers, redirect: "manual" });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(";");
      const at = pair.indexOf("=");
      jar.set(pair.slice(0, at), pair.slice(at + 1));
    }
    return response;
  };
}

/** Signs one browser in at the provider; resolves to a function that sends its callback. */
async function preparedCallback(gateway, email) {
  const send = browser();
  let url = `${gateway}/authenticate/sso/start?${new URLSearchParams({ email, return_to: `${APP}/` })}`;
  for (let hop = 0; hop < 10; hop++) {
    const response = await send(url);
    const location = response.headers.get("Location");
    if (location) {
      url = new URL(location, url).href;
      if (url.startsWith(`${gateway}/authenticate/sso/callback`)) return () => send(url);
      continue;
    }
    const action = /<form method="post" action="([^"]+)"/.exec(await response.text())?.[1];
    if (!action) throw new Error(`no login form at ${url} (${response.status})`);
    const posted = await send(new URL(action, url).href, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ login: email, password: "gridgate-dev-password" }),
    });
    url = new URL(posted.headers.get("Location"), url).href;
  }
  throw new Error("the sign-in did not reach the callback");
}

const ports = { gateway: await freePort(), inspector: await freePort(), oidc: await freePort() };
const GATEWAY = `http://127.0.0.1:${ports.gateway}`;
const children = [];
let provider;
try {
  // the production configuration without LOGIN_LIMITER (10 starts a minute from one IP would stop the run)
  writeFileSync(
    `${ROOT}${CONFIG}`,
    readFileSync(`${ROOT}wrangler.toml`, "utf8").replace(
      /\[\[ratelimits\]\]\nname = "LOGIN_LIMITER"[^\n]*\n[^\n]*\n[^\n]*\n/,
      "",
    ),
  );
  rmSync(`${ROOT}${PERSIST_TO}`, { recursive: true, force: true });
  const OIDC = `http://127.0.0.1:${ports.oidc}`;
  prepareLocal({ log: () => {}, persistTo: PERSIST_TO, ssoIssuer: OIDC });
  provider = await startOidcProvider({
    port: ports.oidc,
    clients: [{ ...LOCAL_SSO_CLIENT, redirectUris: [`${GATEWAY}/authenticate/sso/callback`] }],
  });
  const worker = gatewayWorker({
    port: ports.gateway,
    inspector: ports.inspector,
    vars: { CORS_ORIGINS: APP },
    persistTo: PERSIST_TO,
  });
  worker.args.push("--config", CONFIG);
  children.push(startWorker(worker, { onLine: () => {}, onExit: () => {} }));
  if (!(await waitForOk(`${GATEWAY}/health`, { timeoutMs: 90_000 }))) throw new Error("the gateway did not come up");
  const pid = workerdOf(children[0].pid);
  // warm-up: discovery, JWKS, the isolate
  await (
    await preparedCallback(GATEWAY, "architect@acme.example")
  )();
  let callbackMs = 0;
  let healthMs = 0;
  let loginMs = 0;
  for (let batch = 0; batch < BATCHES; batch++) {
    const callbacks = [];
    for (let i = 0; i < BATCH; i++) callbacks.push(await preparedCallback(GATEWAY, "architect@acme.example"));
    let before = cpuMs(pid);
    for (const callback of callbacks) {
      const response = await callback();
      if (response.status !== 302 || !response.headers.get("Set-Cookie")?.includes("gridgate-refresh"))
        throw new Error(`callback answered ${response.status} ${response.headers.get("Location")}`);
    }
    callbackMs += cpuMs(pid) - before;
    before = cpuMs(pid);
    for (let i = 0; i < BATCH; i++) await (await fetch(`${GATEWAY}/health`)).text();
    healthMs += cpuMs(pid) - before;
    before = cpuMs(pid);
    for (let i = 0; i < BATCH; i++) {
      const response = await fetch(`${GATEWAY}/authenticate`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ email: "architect@acme.example", password: "gridgate-dev-password" }),
      });
      if (response.status !== 200) throw new Error(`login answered ${response.status}`);
      await response.text();
    }
    loginMs += cpuMs(pid) - before;
  }
  const n = BATCH * BATCHES;
  const perCallback = callbackMs / n;
  const perHealth = healthMs / n;
  const perLogin = loginMs / n;
  console.log(
    `sso-callback: ${n} callbacks, workerd CPU ${perCallback.toFixed(2)} ms each; GET /health ${perHealth.toFixed(2)} ms, password login ${perLogin.toFixed(2)} ms; callback − health ${(perCallback - perHealth).toFixed(2)} ms`,
  );
} finally {
  await provider?.close();
  await stopGroups(children);
  rmSync(`${ROOT}${CONFIG}`, { force: true });
}
