// `npm run dev`: local secrets, migrated and seeded local D1, then the demo origin (127.0.0.1:8788)
// and the gateway (127.0.0.1:8787) as two `wrangler dev` process groups that live and die together.
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = `${ROOT}node_modules/.bin/`;
const ORIGIN_DIR = `${ROOT}examples/demo-origin/`;
const GATEWAY = { name: "gateway", port: 8787, inspector: 9229, args: [] };
const ORIGIN = { name: "origin", port: 8788, inspector: 9230, args: ["--config", `${ORIGIN_DIR}wrangler.toml`] };
const env = { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" };

/** KEY=VALUE lines of a .dev.vars file (comments and blank lines skipped, surrounding quotes removed). */
function readDevVars(path) {
  const vars = {};
  for (const line of readFileSync(path, "utf8").split(/\r?\n/)) {
    const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (match) vars[match[1]] = match[2].replace(/^(["'])(.*)\1$/, "$2");
  }
  return vars;
}

/** Runs one setup step to completion, showing its output only when it fails (then exits). */
function step(title, command, args, extraEnv = {}) {
  console.log(`[dev] ${title}`);
  const result = spawnSync(command, args, {
    cwd: ROOT,
    env: { ...env, ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
    encoding: "utf8",
  });
  if (result.status !== 0) {
    process.stderr.write(`${result.stdout ?? ""}${result.stderr ?? ""}`);
    console.error(`[dev] ${title} failed (${result.error?.message ?? `exit ${result.status ?? result.signal}`})`);
    process.exit(1);
  }
}

function prepare() {
  if (!existsSync(`${ROOT}.dev.vars`)) {
    copyFileSync(`${ROOT}.dev.vars.example`, `${ROOT}.dev.vars`);
    console.log("[dev] created .dev.vars from .dev.vars.example");
  }
  const vars = readDevVars(`${ROOT}.dev.vars`);
  for (const name of ["JWT_SECRET", "PASSWORD_PEPPER", "ASSERTION_SECRET"]) {
    if (!vars[name]) throw new Error(`.dev.vars has no ${name}; compare it with .dev.vars.example`);
  }
  writeFileSync(
    `${ORIGIN_DIR}.dev.vars`,
    `# Written by npm run dev from ../../.dev.vars\nASSERTION_SECRET=${vars.ASSERTION_SECRET}\n`,
  );
  mkdirSync(`${ROOT}.wrangler`, { recursive: true });
  step("applying migrations to the local D1", `${BIN}wrangler`, ["d1", "migrations", "apply", "DB", "--local"]);
  step("writing seed SQL (.wrangler/seed.sql)", `${BIN}tsx`, ["scripts/dev-seed.ts", ".wrangler/seed.sql"], {
    PASSWORD_PEPPER: vars.PASSWORD_PEPPER,
  });
  step("seeding the local D1", `${BIN}wrangler`, [
    "d1",
    "execute",
    "DB",
    "--local",
    "--yes",
    "--file",
    ".wrangler/seed.sql",
  ]);
}

const children = [];
let stopping = false;

/** Starts `wrangler dev` in its own process group, prefixing its output lines with the worker's name. */
function start(worker) {
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
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => console.log(`[${worker.name}] ${line}`));
  }
  child.on("exit", (code, signal) => {
    child.exited = true;
    if (!stopping) console.error(`[dev] ${worker.name} stopped (${signal ?? `exit ${code}`}); stopping the rest`);
    stop(code ?? 1);
  });
  children.push(child);
}

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group is already gone
  }
}

/** Stops both process groups: SIGTERM, then SIGKILL after 5 s; exits once every child has exited. */
function stop(code = 0) {
  if (!stopping) {
    stopping = true;
    process.exitCode = code;
    for (const child of children) killGroup(child, "SIGTERM");
    setTimeout(() => children.forEach((child) => killGroup(child, "SIGKILL")), 5000).unref();
  }
  if (children.every((child) => child.exited)) {
    for (const child of children) killGroup(child, "SIGKILL");
    process.exit(process.exitCode);
  }
}

async function announceWhenReady() {
  for (let attempt = 0; attempt < 120 && !stopping; attempt++) {
    try {
      const response = await fetch(`http://127.0.0.1:${GATEWAY.port}/health`);
      if (response.ok) {
        console.log(
          `[dev] ready: gateway http://127.0.0.1:${GATEWAY.port}, demo origin http://127.0.0.1:${ORIGIN.port} (Ctrl-C stops both)`,
        );
        return;
      }
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    if (!stopping) console.log(`[dev] ${signal}: stopping the gateway and the demo origin`);
    stop(0);
  });
}
try {
  prepare();
} catch (error) {
  console.error(`[dev] ${error.message}`);
  process.exit(1);
}
start(ORIGIN);
start(GATEWAY);
announceWhenReady();
