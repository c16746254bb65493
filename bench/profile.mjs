// `npm run bench:profile`: a V8 CPU profile of the gateway (or the bare forwarder) under the bench's load, taken
// through workerd's inspector, summarised by self time per function. Needs the configs of a prior `npm run bench`.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { closedLoop, once, requestBytes } from "./lib/http.mjs";
import { buildWorker, priorBenchPorts, runBounded, startWorkerd } from "./lib/servers.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "bench/out");
const TARGET = process.env.BENCH_PROFILE_TARGET ?? "gateway";
const LOAD_MS = Number(process.env.BENCH_LOAD_MS ?? 6000);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const INSPECTOR_PORT = 9229;
const API_PATH = "/grids/1";
const SEED = { email: "architect@acme.example", password: "gridgate-dev-password" };

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
  const ports = priorBenchPorts(OUT, ["origin", "gateway", "forward"]);
  const dir = join(OUT, "profile");
  mkdirSync(dir, { recursive: true });
  // An unminified copy of the production bundle, so the profile names functions as the source does.
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8").replace(/^minify = true.*$/m, "minify = false");
  // Paths in the copy are relative to bench/out/profile: the entry point and the [alias] targets.
  writeFileSync(
    join(ROOT, "bench/out/profile/wrangler.toml"),
    toml.replace(/^main = "/m, 'main = "../../../').replaceAll('= "./src/', '= "../../../src/'),
  );
  const built = await buildWorker(ROOT, join(dir, "wrangler.toml"), join(dir, "gateway"));
  if (built.modules[0] !== "index.js") throw new Error(`unexpected modules ${built.modules}`);
  const gatewayConfig = readFileSync(join(OUT, "gateway.capnp"), "utf8").replace(
    'embed "gateway/index.js"',
    'embed "profile/gateway/index.js"',
  );
  writeFileSync(join(OUT, "profile.capnp"), gatewayConfig);

  const origin = await startWorkerd("origin", join(OUT, "origin.capnp"), ports.origin, join(dir, "origin.log"));
  const config = TARGET === "forward" ? join(OUT, "forward.capnp") : join(OUT, "profile.capnp");
  const port = TARGET === "forward" ? ports.forward : ports.gateway;
  const front = await startWorkerd(TARGET, config, port, join(dir, `${TARGET}.log`), 20_000, [
    `--inspector-addr=127.0.0.1:${INSPECTOR_PORT}`,
  ]);
  void origin;
  void front;

  const gatewayPort = port;
  let token;
  if (TARGET === "gateway") {
    const body = JSON.stringify({ email: SEED.email, password: SEED.password });
    const login = await once(
      gatewayPort,
      requestBytes(gatewayPort, "POST", "/authenticate", { "Content-Type": "application/json" }, body),
    );
    if (login.status !== 200) throw new Error(`login failed: ${login.status} ${login.body}`);
    token = JSON.parse(login.body.toString()).access_token;
  } else {
    token = "not-checked-by-the-forwarder";
  }
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
  const file = join(dir, `${TARGET}.cpuprofile`);
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
