// The local stack shared by `npm run dev` and `npm run test:browser`: local secrets, a migrated and
// seeded local D1, `wrangler dev` workers in process groups of their own, and the demo web app server.
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, watch, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { basename, dirname } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = `${ROOT}node_modules/.bin/`;
const ORIGIN_DIR = `${ROOT}examples/demo-origin/`;
const WEB_APP_DIR = `${ROOT}examples/web-app/`;
/** Browser origins `npm run dev` allows when .dev.vars sets no CORS_ORIGINS. */
export const DEV_CORS_ORIGINS = "http://localhost:5173,http://127.0.0.1:5173";

const env = { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" };

/** A free TCP port on 127.0.0.1, as the kernel hands one out. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** KEY=VALUE lines of a .dev.vars file (comments and blank lines skipped, surrounding quotes removed). */
function readDevVars(path) {
  const vars = {};
  for (const line of readFileSync(path, "utf8").split(/\r?\n/)) {
    const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (match) vars[match[1]] = match[2].replace(/^(["'])(.*)\1$/, "$2");
  }
  return vars;
}

/** The text of `path`, or null when there is no such file. */
export function readTextOrNull(path) {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if (error.code === "ENOENT") return null;
    throw error;
  }
}

/**
 * Calls `onChange(text)` (null once the file is gone) when the content of the file at `path` differs from what
 * it last saw, once per burst of writes (`debounceMs`). It watches the directory, so an editor that replaces
 * the file by a rename is seen too. Returns a function that stops watching.
 */
export function watchFileContent(path, onChange, { debounceMs = 300 } = {}) {
  let seen = readTextOrNull(path);
  let timer;
  const watcher = watch(dirname(path), (_event, filename) => {
    if (filename !== basename(path)) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      const text = readTextOrNull(path);
      if (text === seen) return;
      seen = text;
      onChange(text);
    }, debounceMs);
  });
  return () => {
    clearTimeout(timer);
    watcher.close();
  };
}

/** Runs one setup step to completion, showing its output only when it fails (then throws). */
function step(log, title, command, args, extraEnv = {}) {
  log(title);
  const result = spawnSync(command, args, {
    cwd: ROOT,
    env: { ...env, ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
    encoding: "utf8",
  });
  if (result.status !== 0) {
    process.stderr.write(`${result.stdout ?? ""}${result.stderr ?? ""}`);
    throw new Error(`${title} failed (${result.error?.message ?? `exit ${result.status ?? result.signal}`})`);
  }
}

/**
 * Local secrets: .dev.vars (created from .dev.vars.example when missing) and, only while the gateway signs
 * assertions with HS256, the demo origin's copy of the assertion secret (otherwise it verifies with the gateway's
 * JWKS). Returns the .dev.vars values; throws when a required one is missing.
 */
export function prepareSecrets({ log }) {
  if (!existsSync(`${ROOT}.dev.vars`)) {
    copyFileSync(`${ROOT}.dev.vars.example`, `${ROOT}.dev.vars`);
    log("created .dev.vars from .dev.vars.example");
  }
  const vars = readDevVars(`${ROOT}.dev.vars`);
  const hs256 = vars.ASSERTION_ALG === "HS256";
  for (const name of ["JWT_SECRET", "PASSWORD_PEPPER", hs256 ? "ASSERTION_SECRET" : "ASSERTION_KEYS"]) {
    if (!vars[name]) throw new Error(`.dev.vars has no ${name}; compare it with .dev.vars.example`);
  }
  writeFileSync(
    `${ORIGIN_DIR}.dev.vars`,
    `# Written by npm run dev from ../../.dev.vars\n${hs256 ? `ASSERTION_SECRET=${vars.ASSERTION_SECRET}\n` : ""}`,
  );
  return vars;
}

/**
 * Local secrets ({@link prepareSecrets}), then migrations and seed data in the local D1 under `persistTo`
 * (wrangler's default when undefined), with `m7l9hw` connected to the local OpenID Provider at `ssoIssuer`. Returns the
 * .dev.vars values.
 */
export function prepareLocal({ log, persistTo, ssoIssuer }) {
  const vars = prepareSecrets({ log });
  mkdirSync(`${ROOT}.wrangler`, { recursive: true });
  const persist = persistTo ? ["--persist-to", persistTo] : [];
  const seedFile = persistTo ? `${persistTo}/seed.sql` : ".wrangler/seed.sql";
  if (persistTo) mkdirSync(`${ROOT}${persistTo}`, { recursive: true });
  const wrangler = `${BIN}wrangler`;
  step(log, "applying migrations to the local D1", wrangler, [
    "d1",
    "migrations",
    "apply",
    "DB",
    "--local",
    ...persist,
  ]);
  step(log, `writing seed SQL (${seedFile})`, `${BIN}tsx`, ["scripts/dev-seed.ts", seedFile], {
    PASSWORD_PEPPER: vars.PASSWORD_PEPPER,
    ...(ssoIssuer && vars.SECRETS_KEY ? { SSO_ISSUER: ssoIssuer, SECRETS_KEY: vars.SECRETS_KEY } : {}),
  });
  step(log, "seeding the local D1", wrangler, [
    "d1",
    "execute",
    "DB",
    "--local",
    "--yes",
    "--file",
    seedFile,
    ...persist,
  ]);
  return vars;
}

/** The gateway worker as `wrangler dev` runs it. */
export function gatewayWorker({ port, inspector, vars = {}, persistTo }) {
  return {
    name: "gateway",
    port,
    inspector,
    args: [...varArgs(vars), ...(persistTo ? ["--persist-to", persistTo] : [])],
  };
}

/** The demo origin worker as `wrangler dev` runs it; `vars` replace those of its wrangler.toml (`GATEWAY_JWKS_URL`). */
export function originWorker({ port, inspector, vars = {} }) {
  return { name: "origin", port, inspector, args: ["--config", `${ORIGIN_DIR}wrangler.toml`, ...varArgs(vars)] };
}

function varArgs(vars) {
  return Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]);
}

/** Passes each output line of `child` to `onLine(worker, line)` and calls `onExit(worker, code, signal)` once. */
function supervised(child, worker, { onLine, onExit }) {
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => onLine(worker, line));
  }
  child.on("exit", (code, signal) => {
    child.exited = true;
    onExit(worker, code, signal);
  });
  return child;
}

/**
 * Starts `wrangler dev` for `worker` in a process group of its own (so the whole tree can be stopped),
 * passing each output line to `onLine(worker, line)` and calling `onExit(worker, code, signal)` once.
 */
export function startWorker(worker, { onLine, onExit }) {
  const args = [
    "dev",
    ...worker.args,
    "--ip",
    "127.0.0.1",
    "--port",
    String(worker.port),
    "--inspector-port",
    String(worker.inspector),
    "--show-interactive-dev-session=false",
  ];
  const child = spawn(`${BIN}wrangler`, args, { cwd: ROOT, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  return supervised(child, worker, { onLine, onExit });
}

/**
 * Starts the local OpenID Provider (scripts/oidc-provider.mjs) on 127.0.0.1:`port` in a process group of its own,
 * accepting `redirectUris`; output and exit go to the callbacks as for {@link startWorker} (named `oidc`).
 */
export function startOidcProvider({ port, redirectUris }, { onLine, onExit }) {
  const worker = { name: "oidc" };
  const args = [
    "scripts/oidc-provider.mjs",
    "--port",
    String(port),
    ...redirectUris.flatMap((uri) => ["--redirect-uri", uri]),
  ];
  const child = spawn(`${BIN}tsx`, args, { cwd: ROOT, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  return supervised(child, worker, { onLine, onExit });
}

/** Sends `signal` to the process group `child` leads; quiet when it is already gone. */
function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group is already gone
  }
}

/** Stops process groups: SIGTERM, SIGKILL after `graceMs`; resolves once every leader has exited. */
export async function stopGroups(children, graceMs = 5000) {
  for (const child of children) killGroup(child, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (children.some((child) => !child.exited) && Date.now() < deadline) await sleep(100);
  // SIGKILL the groups in any case: workerd children may outlive their wrangler parent
  for (const child of children) killGroup(child, "SIGKILL");
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `url` until it answers 2xx; false after `timeoutMs` or once `cancelled()` is true. */
export async function waitForOk(url, { timeoutMs = 60_000, cancelled = () => false } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !cancelled()) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (response.ok) return true;
    } catch {
      // not listening yet
    }
    await sleep(300);
  }
  return false;
}

const WEB_APP_FILES = {
  "/": ["index.html", "text/html; charset=utf-8"],
  "/index.html": ["index.html", "text/html; charset=utf-8"],
  "/app.js": ["app.js", "text/javascript; charset=utf-8"],
  "/style.css": ["style.css", "text/css; charset=utf-8"],
};

/**
 * Serves examples/web-app/ (and `config.json` naming the gateway) on 127.0.0.1:`port`, with a CSP
 * that lets the page talk to nothing but itself and the gateway. Resolves to the listening server.
 */
export function serveWebApp({ port, gateway, host = "127.0.0.1" }) {
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `connect-src 'self' ${gateway}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://web-app").pathname;
    const headers = {
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      "Content-Security-Policy": csp,
    };
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { ...headers, Allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/config.json") {
      response.writeHead(200, { ...headers, "Content-Type": "application/json" }).end(JSON.stringify({ gateway }));
      return;
    }
    const file = WEB_APP_FILES[path];
    if (!file) {
      response.writeHead(404, { ...headers, "Content-Type": "text/plain" }).end("not found\n");
      return;
    }
    response.writeHead(200, { ...headers, "Content-Type": file[1] }).end(readFileSync(`${WEB_APP_DIR}${file[0]}`));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
