// `npm run bench:profile`: a V8 CPU profile of the gateway (or the bare forwarder) under the bench's load, taken
// through workerd's inspector, summarised by self time per function.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { API_PATH } from "./lib/fixtures.mjs";
import { closedLoop, once, requestBytes } from "./lib/http.mjs";
import { runBounded } from "./lib/servers.mjs";
import { accessToken, OUT, prepareServers, ROOT, serverPorts, startServers } from "./lib/stack.mjs";

const PORTS = serverPorts(Number(process.env.BENCH_PORT_BASE ?? 9130));
const TARGET = process.env.BENCH_PROFILE_TARGET === "forward" ? "forward" : "gateway";
const LOAD_MS = Number(process.env.BENCH_LOAD_MS ?? 6000);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const INSPECTOR_PORT = 9229;
const DIR = join(OUT, "profile");

const log = (...args) => console.log(...args);

/** One Chrome DevTools Protocol session over the inspector's WebSocket. */
async function inspectorSession() {
  const targets = await (await fetch(`http://127.0.0.1:${INSPECTOR_PORT}/json/list`)).json();
  const target = targets.find((t) => t.webSocketDebuggerUrl) ?? targets[0];
  const url = target.webSocketDebuggerUrl ?? `ws://127.0.0.1:${INSPECTOR_PORT}/${target.id}`;
  const socket = new WebSocket(url);
  await new Promise((ok, fail) => {
    socket.onopen = ok;
    socket.onerror = fail;
  });
  let next = 1;
  const pending = new Map();
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.id && pending.has(message.id)) {
      pending.get(message.id)(message);
      pending.delete(message.id);
    }
  };
  return {
    send: (method, params = {}) =>
      new Promise((ok, fail) => {
        const id = next++;
        pending.set(id, (message) =>
          message.error ? fail(new Error(JSON.stringify(message.error))) : ok(message.result),
        );
        socket.send(JSON.stringify({ id, method, params }));
      }),
    close: () => socket.close(),
  };
}

/** Self time per function (name + location) and per bucket, in % of the profile's non-idle samples. */
function summarise(profile) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === "(idle)") return;
    const delta = profile.timeDeltas[i] ?? 0;
    total += delta;
    const key = `${functionName || "(anonymous)"} ${url ? `${url.replace(/^.*\//, "")}:${lineNumber + 1}` : ""}`;
    self.set(key, (self.get(key) ?? 0) + delta);
  });
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]);
  return { total, rows };
}

async function main() {
  mkdirSync(DIR, { recursive: true });
  // An unminified copy of wrangler.toml, so the profile names functions as the source does; its paths (the entry
  // point and the [alias] targets) made relative to bench/out/profile.
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8").replace(/^minify = true.*$/m, "minify = false");
  writeFileSync(
    join(DIR, "wrangler.toml"),
    toml.replace(/^main = "/m, 'main = "../../../').replaceAll('= "./src/', '= "../../../src/'),
  );
  await prepareServers({
    out: DIR,
    ports: PORTS,
    servers: ["origin", TARGET],
    gatewayConfig: join(DIR, "wrangler.toml"),
  });
  await startServers(DIR, PORTS, ["origin", TARGET], { [TARGET]: [`--inspector-addr=127.0.0.1:${INSPECTOR_PORT}`] });

  const port = PORTS[TARGET];
  // The forwarder checks no token; the demo origin answers it 401 (no assertion): enough for its fixed cost.
  const token = TARGET === "gateway" ? await accessToken(port) : "not-checked-by-the-forwarder";
  const bytes = requestBytes(port, "GET", API_PATH, { Authorization: `Bearer ${token}` });
  const first = await once(port, bytes);
  if (TARGET === "gateway" && first.status !== 200) throw new Error(`gateway answered ${first.status}: ${first.body}`);
  await closedLoop(port, bytes, { connections: CONNECTIONS, durationMs: 1500, expect: first.status });

  const session = await inspectorSession();
  await session.send("Profiler.enable");
  await session.send("Profiler.setSamplingInterval", { interval: 100 });
  await session.send("Profiler.start");
  const load = await closedLoop(port, bytes, { connections: CONNECTIONS, durationMs: LOAD_MS, expect: first.status });
  const { profile } = await session.send("Profiler.stop");
  session.close();
  const file = join(DIR, `${TARGET}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));

  const { total, rows } = summarise(profile);
  const perRequest = (us) => us / load.requests;
  log(
    `${TARGET}: ${load.requests} requests (${load.rps.toFixed(0)} req/s, status ${first.status}, ${load.bad} other), ` +
      `${(total / 1000).toFixed(0)} ms of non-idle samples = ${perRequest(total).toFixed(1)} µs/req; profile in ${file}`,
  );
  log("| self µs/req | % | function |");
  log("|---:|---:|---|");
  for (const [key, us] of rows.slice(0, Number(process.env.BENCH_PROFILE_ROWS ?? 45)))
    log(`| ${perRequest(us).toFixed(1)} | ${((100 * us) / total).toFixed(1)} | ${key} |`);
}

await runBounded("bench:profile", main, 120_000);
