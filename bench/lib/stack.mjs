// The bench's servers as every bench tool and the soak run them: which Worker each serves (a bundle from
// `wrangler deploy --dry-run --outdir`), its bindings and workerd config, its port; and the seeded member's login.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { SECRETS, SEED } from "./fixtures.mjs";
import { once, requestBytes } from "./http.mjs";
import { buildWorker, startWorkerd, textBindings, workerBlock, writeConfig } from "./servers.mjs";

/** The repository's root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** Where the bench tools write bundles, configs, logs and results (ignored by git). */
export const OUT = join(ROOT, "bench/out");

/** The wrangler config of each Worker, relative to the root (`origin`: see {@link prepareServers}). */
const WRANGLER_CONFIGS = {
  gateway: "wrangler.toml",
  storage: "bench/wrangler.storage.toml",
  verify: "bench/wrangler.verify.toml",
  origin: "examples/demo-origin/wrangler.toml",
  benchOrigin: "bench/wrangler.origin.toml",
  forward: "bench/wrangler.forward.toml",
  floor: "bench/wrangler.floor.toml",
  peer: "bench/wrangler.peer.toml",
};

/** workerd's outbound network for a Worker that fetches its origin over loopback. */
const INTERNET = ["internet", `network = (allow = ["public", "private", "local"])`];

/** The port of each server: `base` + 1 … 6 (origin, gateway, verify, forward, floor, peer). */
export function serverPorts(base) {
  return { origin: base + 1, gateway: base + 2, verify: base + 3, forward: base + 4, floor: base + 5, peer: base + 6 };
}

/** `[vars]`, the compatibility date and the Durable Object bindings of a wrangler.toml, read with a deliberately small parser. */
function wranglerSettings(path) {
  const text = readFileSync(path, "utf8");
  const vars = {};
  const section = /^\[vars\]\s*$([\s\S]*?)(?=^\[|$(?![\s\S]))/m.exec(text)?.[1] ?? "";
  for (const match of section.matchAll(/^\s*([A-Z0-9_]+)\s*=\s*"([^"]*)"/gm)) vars[match[1]] = match[2];
  const compatibilityDate = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(text)?.[1] ?? "2026-11-01";
  const durableObjects = [];
  for (const block of text.split(/^\[\[durable_objects\.bindings\]\]\s*$/m).slice(1)) {
    const name = /^name\s*=\s*"([^"]+)"/m.exec(block)?.[1];
    const className = /^class_name\s*=\s*"([^"]+)"/m.exec(block)?.[1];
    if (name && className) durableObjects.push({ name, className });
  }
  return { vars, compatibilityDate, durableObjects };
}

/**
 * The workerd services of one gateway: the `gateway` worker (text bindings `env`, D1 and KV from the bench
 * storage worker, its own SQLite-backed Durable Objects) and the `storage` worker, with their disks under `out`
 * (emptied first) and the `internet` service the gateway reaches its origin through. Writes `out/migrations.sql`.
 */
function gatewayServices({ root, out, gateway, storage, compatibilityDate, durableObjects, env, pepper }) {
  const migrations = readdirSync(join(root, "migrations"))
    .filter((name) => name.endsWith(".sql"))
    .sort();
  writeFileSync(
    join(out, "migrations.sql"),
    migrations.map((name) => readFileSync(join(root, "migrations", name), "utf8")).join("\n;\n"),
  );
  const d1Dir = join(out, "d1");
  const doDir = join(out, "gateway-objects");
  for (const dir of [d1Dir, doDir]) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
  }
  // The gateway's own Durable Objects (wrangler.toml [[durable_objects.bindings]]), SQLite-backed on local disk.
  const gatewayObjects = durableObjects.length
    ? `
  durableObjectNamespaces = [ ${durableObjects
    .map(
      ({ className }) =>
        `(className = ${JSON.stringify(className)}, uniqueKey = "gridgate-bench-${className}", enableSql = true)`,
    )
    .join(", ")} ],
  durableObjectStorage = (localDisk = "gateway-do-disk"),`
    : "";
  const worker = (bundle, bindings, extra) =>
    `worker = ${workerBlock({ configDir: out, dir: bundle.dir, modules: bundle.modules, compatibilityDate, bindings, extra })}`;
  return [
    [
      "gateway",
      worker(
        gateway,
        [
          ...textBindings(env),
          `(name = "DB", wrapped = (moduleName = "cloudflare-internal:d1-api", innerBindings = [(name = "fetcher", service = "storage")]))`,
          `(name = "TOKENS", kvNamespace = (name = "storage", entrypoint = "kv"))`,
          ...durableObjects.map(
            ({ name, className }) =>
              `(name = ${JSON.stringify(name)}, durableObjectNamespace = (className = ${JSON.stringify(className)}))`,
          ),
        ],
        gatewayObjects,
      ),
    ],
    [
      "storage",
      worker(
        storage,
        [
          `(name = "DATABASE", durableObjectNamespace = (className = "Database"))`,
          `(name = "MIGRATIONS", text = embed "migrations.sql")`,
          ...textBindings({ PASSWORD_PEPPER: pepper }),
        ],
        `
  durableObjectNamespaces = [ (className = "Database", uniqueKey = "gridgate-bench-d1", enableSql = true) ],
  durableObjectStorage = (localDisk = "d1-disk"),`,
      ),
    ],
    ["d1-disk", `disk = (path = ${JSON.stringify(d1Dir)}, writable = true)`],
    ["gateway-do-disk", `disk = (path = ${JSON.stringify(doDir)}, writable = true)`],
    INTERNET,
  ];
}

/**
 * Builds what `servers` need (`gateway` brings its storage Worker) into `out/<name>` and writes each server's
 * workerd config, `out/<name>.capnp`, listening on `ports[name]`. `origin` is examples/demo-origin (it checks
 * `X-Gateway-Assertion`) unless `benchOrigin` or the demo is missing; `gatewayConfig` replaces wrangler.toml as
 * the gateway's build config, `gatewayEnv` adds to its vars. Returns the bundles by name, the issuer and which
 * origin serves.
 */
export async function prepareServers({
  out,
  ports,
  servers,
  benchOrigin = false,
  gatewayConfig = join(ROOT, WRANGLER_CONFIGS.services),
  gatewayEnv = {},
}) {
  mkdirSync(out, { recursive: true });
  const demoOrigin = !benchOrigin && existsSync(join(ROOT, WRANGLER_CONFIGS.origin));
  const configOf = (name) =>
    name === "gateway"
      ? gatewayConfig
      : join(ROOT, WRANGLER_CONFIGS[name === "origin" && !demoOrigin ? "benchOrigin" : name]);
  const names = servers.includes("gateway") ? [...servers, "storage"] : servers;
  const built = await Promise.all(
    names.map((name) =>
      buildWorker(ROOT, configOf(name), join(out, name)).then((bundle) => ({ ...bundle, dir: join(out, name) })),
    ),
  );
  const bundles = Object.fromEntries(names.map((name, i) => [name, built[i]]));

  const { vars, compatibilityDate, durableObjects } = wranglerSettings(join(ROOT, WRANGLER_CONFIGS.services));
  const issuer = vars.ISSUER ?? "gridgate";
  const originUrl = `http://127.0.0.1:${ports.origin}`;
  const bindings = {
    origin: { ISSUER: issuer, ASSERTION_SECRET: SECRETS.ASSERTION_SECRET },
    verify: { ...vars, ...SECRETS },
    forward: { ORIGIN_URL: originUrl },
    floor: { ORIGIN_URL: originUrl, JWT_SECRET: SECRETS.JWT_SECRET, ASSERTION_SECRET: SECRETS.ASSERTION_SECRET },
    peer: { ORIGIN_URL: originUrl, JWT_SECRET: SECRETS.JWT_SECRET, ISSUER: issuer },
  };
  for (const name of servers) {
    const services =
      name === "gateway"
        ? gatewayServices({
            root: ROOT,
            out,
            gateway: bundles.services,
            storage: bundles.storage,
            compatibilityDate,
            durableObjects,
            pepper: SECRETS.PASSWORD_PEPPER,
            env: { ...vars, ...SECRETS, ORIGIN_URL: originUrl, ...gatewayEnv },
          })
        : [
            [
              name,
              `worker = ${workerBlock({ configDir: out, dir: bundles[name].dir, modules: bundles[name].modules, compatibilityDate, bindings: textBindings(bindings[name]) })}`,
            ],
            ...(bindings[name].ORIGIN_URL ? [INTERNET] : []),
          ];
    writeConfig(join(out, `${name}.capnp`), { port: ports[name], entry: name, services });
  }
  return { bundles, issuer, demoOrigin };
}

/**
 * Starts `workerd serve out/<name>.capnp` for each of `names` (its log in `out/<name>.log`, `args[name]` added to
 * its command line); resolves with the servers by name once all listen.
 */
export async function startServers(out, ports, names, args = {}) {
  const started = await Promise.all(
    names.map((name) =>
      startWorkerd(name, join(out, `${name}.capnp`), ports[name], join(out, `${name}.log`), 20_000, args[name]),
    ),
  );
  return Object.fromEntries(names.map((name, i) => [name, started[i]]));
}

/** Logs the seeded member in at the gateway on `port`; returns its access token. */
export async function accessToken(port) {
  const body = JSON.stringify({ email: SEED.email, password: SEED.password });
  const login = await once(
    port,
    requestBytes(port, "POST", "/authenticate", { "Content-Type": "application/json" }, body),
  );
  if (login.status !== 200) throw new Error(`login failed: HTTP ${login.status} ${login.body}`);
  return JSON.parse(login.body.toString()).access_token;
}
