// The gateway under bare workerd as `npm run bench` and `npm run soak` run it: wrangler.toml's vars and Durable
// Objects, the bench storage worker as D1 and KV (seeded with the local accounts), fresh on-disk state per run.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { textBindings, workerBlock } from "./servers.mjs";

/** `[vars]`, the compatibility date and the Durable Object bindings of a wrangler.toml, read with a deliberately small parser. */
export function wranglerSettings(path) {
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
export function gatewayServices({ root, out, gateway, storage, compatibilityDate, durableObjects, env, pepper }) {
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
    ["internet", `network = (allow = ["public", "private", "local"])`],
  ];
}
