// `npm run bench:floor`: the bare forwarder, the contract's native work in three cumulative steps
// (bench/workers/floor.ts) and the gateway, each under the bench's closed-loop load against the same origin,
// alternating; ratios and differences to the forwarder inside each repetition. Needs the configs of a prior
// `npm run bench` (bench/out/*.capnp); builds only the floor worker.
import { writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { assertionFor, SECRETS } from "./lib/fixtures.mjs";
import { closedLoop, median, once, requestBytes } from "./lib/http.mjs";
import {
  buildWorker,
  cpuSeconds,
  priorBenchPorts,
  runBounded,
  startWorkerd,
  textBindings,
  workerBlock,
  writeConfig,
} from "./lib/servers.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "bench/out");
const REPS = Math.max(3, Number(process.env.BENCH_E2E_REPS ?? 5));
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const LOAD_MS = Number(process.env.BENCH_LOAD_MS ?? 2500);
const API_PATH = "/grids/1";
const STEPS = ["headers", "deadline", "assertion"];

const log = (...args) => console.log(...args);

async function main() {
  const ports = priorBenchPorts(OUT, ["origin", "gateway", "forward"]);
  ports.floor = ports.forward + 1;
  const built = await buildWorker(ROOT, join(ROOT, "bench/wrangler.floor.toml"), join(OUT, "floor"));
  const originUrl = `http://127.0.0.1:${ports.origin}`;
  writeConfig(join(OUT, "floor.capnp"), {
    port: ports.floor,
    entry: "floor",
    services: [
      [
        "floor",
        `worker = ${workerBlock({
          configDir: OUT,
          dir: join(OUT, "floor"),
          modules: built.modules,
          compatibilityDate: "2026-11-01",
          bindings: textBindings({ ORIGIN_URL: originUrl, ASSERTION_SECRET: SECRETS.ASSERTION_SECRET }),
        })}`,
      ],
      ["internet", `network = (allow = ["public", "private", "local"])`],
    ],
  });
  const servers = {
    origin: await startWorkerd("origin", join(OUT, "origin.capnp"), ports.origin, join(OUT, "floor-origin.log")),
    gateway: await startWorkerd("gateway", join(OUT, "gateway.capnp"), ports.gateway, join(OUT, "floor-gateway.log")),
    forward: await startWorkerd("forward", join(OUT, "forward.capnp"), ports.forward, join(OUT, "floor-forward.log")),
    floor: await startWorkerd("floor", join(OUT, "floor.capnp"), ports.floor, join(OUT, "floor.log")),
  };

  const login = await once(
    ports.gateway,
    requestBytes(
      ports.gateway,
      "POST",
      "/authenticate",
      { "Content-Type": "application/json" },
      JSON.stringify({ email: "architect@acme.example", password: "gridgate-dev-password" }),
    ),
  );
  if (login.status !== 200) throw new Error(`login failed: ${login.status} ${login.body}`);
  const token = JSON.parse(login.body.toString()).access_token;
  // What the forwarder and the floor send on: the client supplies what the origin checks (a fresh assertion).
  const originHeaders = () => ({
    Authorization: `Bearer ${token}`,
    "X-Gateway-Assertion": assertionFor("GET", API_PATH, "gridgate"),
    "X-Member-Entity-Identifier": "o6q2is",
    "X-Organisation-Entity-Identifier": "m7l9hw",
  });
  const targets = [
    {
      name: "bare forwarder",
      port: ports.forward,
      server: servers.forward,
      bytes: () => requestBytes(ports.forward, "GET", API_PATH, originHeaders()),
    },
    ...STEPS.map((step, i) => ({
      name: `floor: ${STEPS.slice(0, i + 1).join(" + ")}`,
      port: ports.floor,
      server: servers.floor,
      bytes: () => requestBytes(ports.floor, "GET", API_PATH, { ...originHeaders(), "X-Floor-Step": String(i + 1) }),
    })),
    {
      name: "gateway",
      port: ports.gateway,
      server: servers.gateway,
      bytes: () => requestBytes(ports.gateway, "GET", API_PATH, { Authorization: `Bearer ${token}` }),
    },
  ];
  for (const target of targets) {
    const first = await once(target.port, target.bytes());
    if (first.status !== 200) throw new Error(`${target.name}: HTTP ${first.status} ${first.body}`);
    await closedLoop(target.port, target.bytes(), { connections: CONNECTIONS, durationMs: 1000 });
  }
  const runs = targets.map(() => ({ rps: [], cpu: [], originCpu: [] }));
  for (let rep = 0; rep < REPS; rep++) {
    const order = rep % 2 ? [...targets.keys()].reverse() : [...targets.keys()];
    for (const i of order) {
      const { port, server, bytes, name } = targets[i];
      const before = { front: cpuSeconds(server.pid), origin: cpuSeconds(servers.origin.pid) };
      const load = await closedLoop(port, bytes(), { connections: CONNECTIONS, durationMs: LOAD_MS });
      if (load.bad) throw new Error(`${name}: ${load.bad} responses were not 200`);
      runs[i].rps.push(load.rps);
      runs[i].cpu.push(((cpuSeconds(server.pid) - before.front) / load.requests) * 1e6);
      runs[i].originCpu.push(((cpuSeconds(servers.origin.pid) - before.origin) / load.requests) * 1e6);
    }
  }
  const base = runs[0];
  const vs = (values, baseValues, op) => median(values.map((value, k) => op(value, baseValues[k])));
  const rows = targets.map((target, i) => ({
    name: target.name,
    rps: median(runs[i].rps),
    overForwarder: vs(runs[i].rps, base.rps, (a, b) => a / b),
    cpuUs: median(runs[i].cpu),
    cpuOverForwarderUs: vs(runs[i].cpu, base.cpu, (a, b) => a - b),
    originCpuUs: median(runs[i].originCpu),
    originCpuOverForwarderUs: vs(runs[i].originCpu, base.originCpu, (a, b) => a - b),
  }));
  log(
    `## The contract's floor: GET ${API_PATH}, medians of ${REPS} alternating repetitions (${CONNECTIONS} connections, ${LOAD_MS} ms each)`,
  );
  log("| server | req/s | ÷ forwarder | CPU µs/req | − forwarder | origin CPU µs/req | − forwarder |");
  log("|---|---:|---:|---:|---:|---:|---:|");
  for (const row of rows)
    log(
      `| ${row.name} | ${row.rps.toFixed(0)} | ${row.overForwarder.toFixed(2)} | ${row.cpuUs.toFixed(0)} | ${row.cpuOverForwarderUs.toFixed(0)} | ${row.originCpuUs.toFixed(0)} | ${row.originCpuOverForwarderUs.toFixed(0)} |`,
    );
  writeFileSync(join(OUT, "floor.json"), JSON.stringify({ reps: REPS, rows }, null, 2));
  log("results written to bench/out/floor.json");
}

await runBounded("bench:floor", main, 240_000);
