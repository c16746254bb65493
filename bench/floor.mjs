// `npm run bench:floor`: the bare forwarder, the contract's native work in four cumulative steps
// (bench/workers/floor.ts) and the gateway, each under the bench's closed-loop load against the same origin,
// alternating; ratios and differences to the forwarder inside each repetition.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { alternateLoad, bearer, medianOf, originHeaders, pairedMedian } from "./lib/e2e.mjs";
import { API_PATH } from "./lib/fixtures.mjs";
import { runBounded } from "./lib/servers.mjs";
import { accessToken, OUT, prepareServers, serverPorts, startServers } from "./lib/stack.mjs";

const PORTS = serverPorts(Number(process.env.BENCH_PORT_BASE ?? 9130));
const REPS = Math.max(3, Number(process.env.BENCH_E2E_REPS ?? 5));
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const LOAD_MS = Number(process.env.BENCH_LOAD_MS ?? 2500);
const STEPS = ["token", "headers", "deadline", "assertion"];
const SERVERS = ["origin", "gateway", "forward", "floor"];
const OUT_FLOOR = join(OUT, "floor-run");

const log = (...args) => console.log(...args);

async function main() {
  await prepareServers({ out: OUT_FLOOR, ports: PORTS, servers: SERVERS });
  const servers = await startServers(OUT_FLOOR, PORTS, SERVERS);
  const token = await accessToken(PORTS.services);
  const forwarded = (token) => ({ ...bearer(token), ...originHeaders() });
  const targets = [
    { name: "bare forwarder", port: PORTS.forward, server: servers.forward, headers: forwarded },
    ...STEPS.map((_, i) => ({
      name: `floor: ${STEPS.slice(0, i + 1).join(" + ")}`,
      port: PORTS.floor,
      server: servers.floor,
      // Before the last step the client supplies what the origin checks, as past the forwarder; the last step
      // signs the assertion and adds the identity itself, as the gateway does.
      headers: i + 1 < STEPS.length ? (token) => ({ ...forwarded(token), "X-Floor-Step": String(i + 1) }) : bearer,
      authenticates: true,
    })),
    {
      name: "gateway",
      port: PORTS.services,
      server: servers.services,
      headers: bearer,
      authenticates: true,
    },
  ];
  const runs = await alternateLoad(targets, token, {
    reps: REPS,
    connections: CONNECTIONS,
    loadMs: LOAD_MS,
    origin: servers.origin,
  });
  const base = runs["bare forwarder"];
  const rows = targets.map(({ name }) => ({
    name,
    rps: medianOf(runs[name], (r) => r.load.rps),
    overForwarder: pairedMedian(runs[name], base, (a, b) => a.load.rps / b.load.rps),
    cpuUs: medianOf(runs[name], (r) => r.cpuUs),
    cpuOverForwarderUs: pairedMedian(runs[name], base, (a, b) => a.cpuUs - b.cpuUs),
    originCpuUs: medianOf(runs[name], (r) => r.originCpuUs),
    originCpuOverForwarderUs: pairedMedian(runs[name], base, (a, b) => a.originCpuUs - b.originCpuUs),
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
