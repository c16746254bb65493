// `npm run bench`: the verify hot path, end-to-end gateway overhead (against the bare forwarder, the afternoon's peer
// and the contract's floor), login cost, bundle size and startup, measured inside bare workerd from outside over
// loopback HTTP; every server is stopped by its PID group.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { alternateLoad, bearer, medianOf, originHeaders, pairedMedian } from "./lib/e2e.mjs";
import { API_PATH, assertionFor, SEED } from "./lib/fixtures.mjs";
import { Connection, median, quantile, requestBytes } from "./lib/http.mjs";
import { buildUploadBundle, cpuSeconds, runBounded, startupProfile } from "./lib/servers.mjs";
import { accessToken, OUT, prepareServers, ROOT, serverPorts, startServers } from "./lib/stack.mjs";

const PORTS = serverPorts(Number(process.env.BENCH_PORT_BASE ?? 9130));
const REPS = Math.max(5, Number(process.env.BENCH_REPS ?? 7));
const E2E_REPS = Math.max(5, Number(process.env.BENCH_E2E_REPS ?? 5));
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const LOAD_MS = Number(process.env.BENCH_LOAD_MS ?? 2500);
const PROBE_MS = Number(process.env.BENCH_PROBE_MS ?? 1500);
const LOGINS = Number(process.env.BENCH_LOGINS ?? 20);
const STARTUP_REPS = Math.max(3, Number(process.env.BENCH_STARTUP_REPS ?? 5));
const TIME_LIMIT_MS = 285_000;
const VARIANTS = ["gateway", "gateway-fresh", "floor", "jose", "jose-key"];
const SERVERS = ["origin", "gateway", "verify", "forward", "floor", "peer"];

const log = (...args) => console.log(...args);
const fmt = (value, digits = 0) =>
  Number.isFinite(value)
    ? value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "n/a";
const met = (ok) => (ok ? "MET" : "NOT MET");

/** Builds every bundle (and the startup profile's upload bundles), writes the configs, starts the servers. */
async function prepare() {
  const started = performance.now();
  mkdirSync(join(OUT, "startup"), { recursive: true });
  const [prepared] = await Promise.all([
    prepareServers({
      out: OUT,
      ports: PORTS,
      servers: SERVERS,
      benchOrigin: process.env.BENCH_ORIGIN === "bench",
      // The login run sends BENCH_LOGINS wrong passwords for one account: keep the per-account back-off (429) out of it.
      gatewayEnv: { LOGIN_FREE_ATTEMPTS: String(10 * LOGINS + 10) },
    }),
    buildUploadBundle(ROOT, join(ROOT, "wrangler.toml"), join(OUT, "startup/gateway.bundle")),
    buildUploadBundle(ROOT, join(ROOT, "bench/wrangler.forward.toml"), join(OUT, "startup/forward.bundle")),
  ]);
  log(
    `built ${Object.keys(prepared.bundles).length} bundles (and the gateway's and forwarder's upload bundles for the startup profile) with wrangler deploy --dry-run in ${fmt((performance.now() - started) / 1000, 1)} s`,
  );
  const servers = await startServers(OUT, PORTS, SERVERS);
  log(
    `workerd serving on 127.0.0.1: ${SERVERS.map((name) => `${name} ${PORTS[name]}`).join(", ")} (origin: ${prepared.demoOrigin ? "examples/demo-origin" : "bench/workers/origin.ts"})`,
  );
  return { servers, gatewayBundle: prepared.bundles.services };
}

/**
 * One keep-alive connection to the verify bench worker: `get(path)` returns its JSON answer (any other
 * status than 200 throws), `timed(path)` the milliseconds one such request took.
 */
async function verifyWorkerClient() {
  const connection = new Connection(PORTS.verify);
  await connection.open();
  const get = async (path) => {
    const response = await connection.send(requestBytes(PORTS.verify, "GET", path));
    if (response.status !== 200) throw new Error(`verify bench ${path}: HTTP ${response.status} ${response.body}`);
    return JSON.parse(response.body.toString());
  };
  const timed = async (path) => {
    const started = performance.now();
    await get(path);
    return performance.now() - started;
  };
  return { connection, get, timed };
}

/** Part 1: verifications per second of each variant, alternating, ops/s = N / (t(N) − t(0)). */
async function verifyBench() {
  const { connection, get, timed } = await verifyWorkerClient();
  const fixture = await get("/token");
  for (const variant of VARIANTS) {
    const good = await get(`/verify?variant=${variant}&n=3`);
    const bad = await get(`/verify?variant=${variant}&n=3&bad=1`);
    if (good.accepted !== 3 || bad.accepted !== 0)
      throw new Error(
        `variant ${variant} failed the check: accepted ${good.accepted}/3 good, ${bad.accepted}/3 tampered`,
      );
  }
  log(
    `\n## 1. Verification hot path (${fixture.bytes}-byte fixed-secret HS256 token; every variant accepts it and rejects a one-character signature flip)`,
  );

  const t0 = async () =>
    median([
      await timed("/verify?variant=floor&n=0"),
      await timed("/verify?variant=floor&n=0"),
      await timed("/verify?variant=floor&n=0"),
    ]);
  const n = {};
  for (const variant of VARIANTS) {
    for (let i = 0; i < 3; i++) await timed(`/verify?variant=${variant}&n=2000`);
    const rate = 2000 / (Math.max(0.05, (await timed(`/verify?variant=${variant}&n=2000`)) - (await t0())) / 1000);
    n[variant] = Math.round(Math.min(300_000, Math.max(2000, rate * 0.25)) / 1000) * 1000;
  }
  const ops = Object.fromEntries(VARIANTS.map((variant) => [variant, []]));
  const ratios = { floor: [], jose: [] };
  for (let rep = 0; rep < REPS; rep++) {
    const order = VARIANTS.map((_, i) => VARIANTS[(i + rep) % VARIANTS.length]);
    const rep_ = {};
    for (const variant of order) {
      const base = await t0();
      rep_[variant] = (n[variant] / ((await timed(`/verify?variant=${variant}&n=${n[variant]}`)) - base)) * 1000;
      ops[variant].push(rep_[variant]);
    }
    ratios.floor.push(rep_.services / rep_.floor);
    ratios.jose.push(rep_.services / rep_.jose);
  }
  connection.close();

  const floor = median(ops.floor);
  const labels = {
    gateway: "gateway verifyAccessToken (format + signature + claims), same token",
    "gateway-fresh": "gateway verifyAccessToken, a never-seen token each call",
    floor: "HMAC floor: crypto.subtle.verify, cached CryptoKey",
    jose: "jose jwtVerify, Uint8Array secret",
    "jose-key": "jose jwtVerify, cached CryptoKey (reference)",
  };
  log(`| variant | N per request | verifications/s (median of ${REPS}) | min–max | × HMAC floor |`);
  log("|---|---:|---:|---:|---:|");
  for (const variant of VARIANTS) {
    const sorted = [...ops[variant]].sort((a, b) => a - b);
    log(
      `| ${labels[variant]} | ${fmt(n[variant])} | ${fmt(median(sorted))} | ${fmt(sorted[0])}–${fmt(sorted.at(-1))} | ${fmt(median(sorted) / floor, 2)} |`,
    );
  }
  const result = {
    tokenBytes: fixture.bytes,
    n,
    opsPerSecond: Object.fromEntries(VARIANTS.map((variant) => [variant, median(ops[variant])])),
    gatewayOverFloor: median(ratios.floor),
    gatewayOverJose: median(ratios.jose),
  };
  log(
    `gateway ÷ HMAC floor = ${fmt(result.gatewayOverFloor, 2)}× (target ≥ 0.5) ${result.gatewayOverFloor >= 0.5 ? "MET" : "NOT MET"}; ` +
      `gateway ÷ jose = ${fmt(result.gatewayOverJose, 2)}× (target ≥ 3) ${result.gatewayOverJose >= 3 ? "MET" : "NOT MET"}  (medians of per-repetition ratios)`,
  );
  return result;
}

/**
 * Part 1b: what the per-organisation limit check and the metrics write add to a proxied request, in process
 * (no I/O, so wall time in the loop is CPU time): the whole app with both bindings unbound vs bound to
 * in-process stand-ins, and the two steps alone.
 */
async function observeBench() {
  const { connection, get, timed } = await verifyWorkerClient();
  const paths = { bare: "/app?variant=bare", observed: "/app?variant=observed", steps: "/observe?variant=observed" };
  const n = { bare: 1000, observed: 1000, steps: 50_000 };
  for (const [name, path] of Object.entries(paths)) {
    const { accepted } = await get(`${path}&n=3`);
    if (accepted !== 3) throw new Error(`${name}: ${accepted}/3 requests answered 200`);
    for (let i = 0; i < 2; i++) await get(`${path}&n=${n[name]}`);
  }
  const t0 = async () => median([await timed("/verify?variant=floor&n=0"), await timed("/verify?variant=floor&n=0")]);
  const usOf = async (name) => {
    const base = await t0();
    return (((await timed(`${paths[name]}&n=${n[name]}`)) - base) / n[name]) * 1000;
  };
  const us = { bare: [], observed: [], steps: [] };
  const added = [];
  // The app's two variants in A B B A order within each repetition, so a drift of the machine's load cancels
  // out of their difference; twice the repetitions of the other parts, since the difference is small.
  for (let rep = 0; rep < 2 * REPS; rep++) {
    const [first, second] = rep % 2 ? ["observed", "bare"] : ["bare", "observed"];
    const a1 = await usOf(first);
    const b1 = await usOf(second);
    const b2 = await usOf(second);
    const a2 = await usOf(first);
    const mean = { [first]: (a1 + a2) / 2, [second]: (b1 + b2) / 2 };
    us.bare.push(mean.bare);
    us.observed.push(mean.observed);
    added.push(mean.observed - mean.bare);
    us.steps.push(await usOf("steps"));
  }
  connection.close();
  const result = {
    appBareUs: median(us.bare),
    appObservedUs: median(us.observed),
    addedUs: median(added),
    stepsUs: median(us.steps),
  };
  log(`\n## 1b. Limit check + metrics write on the proxied path (in process, µs per request, medians of ${2 * REPS})`);
  log("| measurement | µs / request | min–max |");
  log("|---|---:|---:|");
  const row = (label, values, value) => {
    const sorted = [...values].sort((a, b) => a - b);
    log(`| ${label} | ${fmt(value, 2)} | ${fmt(sorted[0], 2)}–${fmt(sorted.at(-1), 2)} |`);
  };
  row("whole app, API_LIMIT_* and METRICS unbound", us.bare, result.appBareUs);
  row("whole app, both bound (in-process stand-ins)", us.observed, result.appObservedUs);
  row("difference (per repetition)", added, result.addedUs);
  row("the two steps alone (limits.count + route kind + writeDataPoint)", us.steps, result.stepsUs);
  log(
    `limit check + metrics write = ${fmt(result.stepsUs, 2)} µs per request (target < 10) ${result.stepsUs < 10 ? "MET" : "NOT MET"}; ` +
      `the whole app's difference, ${fmt(result.addedUs, 2)} µs, is within this machine's noise (see its min–max). ` +
      "The stand-ins are JavaScript: the production binding's call into the runtime is not included.",
  );
  return result;
}

/** Part 3: sequential logins and refreshes over one connection; wall time and workerd CPU per request. */
async function loginBench(servers) {
  const connection = new Connection(PORTS.services);
  await connection.open();
  const post = async (path, body, i) => {
    const started = performance.now();
    const response = await connection.send(
      requestBytes(
        PORTS.services,
        "POST",
        path,
        { "Content-Type": "application/json", "CF-Connecting-IP": `10.9.${i >> 8}.${i & 255}` },
        JSON.stringify(body),
      ),
    );
    return { ms: performance.now() - started, response };
  };
  /** `count` requests made by `send(i)`, each checked by `send`; p50, p99 and the gateway's CPU ms per request. */
  const measure = async (count, send) => {
    const times = [];
    const cpuBefore = cpuSeconds(servers.services.pid);
    for (let i = 0; i < count; i++) times.push(await send(i));
    const cpu = cpuSeconds(servers.services.pid) - cpuBefore;
    times.sort((a, b) => a - b);
    return { p50: quantile(times, 0.5), p99: quantile(times, 0.99), cpuMsPerLogin: (cpu * 1000) / count };
  };
  const login = (password, expect, offset) => async (i) => {
    const { ms, response } = await post("/authenticate", { email: SEED.email, password }, offset + i);
    if (response.status !== expect) throw new Error(`login expected ${expect}, got ${response.status}`);
    return ms;
  };
  await measure(3, login(SEED.password, 200, 0));
  const ok = await measure(LOGINS, login(SEED.password, 200, 100));
  const wrong = await measure(LOGINS, login("not-the-password", 401, 200));

  // Refresh: a chain of rotations (each presents the successor of the one before), as a client does.
  const first = await post("/authenticate", SEED, 3);
  let refreshToken = JSON.parse(first.response.body.toString()).refresh_token;
  const refreshOnce = async (i) => {
    const { ms, response } = await post("/authenticate/refresh", { refresh_token: refreshToken }, 300 + i);
    if (response.status !== 200) throw new Error(`refresh expected 200, got ${response.status} ${response.body}`);
    refreshToken = JSON.parse(response.body.toString()).refresh_token;
    return ms;
  };
  await measure(2, refreshOnce);
  const refresh = await measure(LOGINS, refreshOnce);
  connection.close();
  log(`\n## 3. Login and refresh: ${LOGINS} sequential requests each, one keep-alive connection`);
  log("| case | p50 ms | p99 ms | gateway workerd CPU ms / login |");
  log("|---|---:|---:|---:|");
  const row = (label, r) => log(`| ${label} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${fmt(r.cpuMsPerLogin, 1)} |`);
  row("correct password → 200", ok);
  row("wrong password → 401", wrong);
  row("refresh (POST /authenticate/refresh, rotating) → 200", refresh);
  return { ok, wrong, refresh };
}

/**
 * Part 2: straight to the origin, through the bare forwarder, the contract's floor, the afternoon's peer and the
 * gateway, alternating; a single-connection probe and a loaded run of each per repetition.
 */
async function e2eBench(servers) {
  const token = await accessToken(PORTS.services);
  const targets = [
    { name: "direct", label: "straight to origin", port: PORTS.origin, headers: originHeaders },
    {
      name: "forward",
      label: "bare forwarding Worker (reference)",
      port: PORTS.forward,
      server: servers.forward,
      headers: (token) => ({ ...bearer(token), ...originHeaders() }),
    },
    {
      name: "floor",
      label: "contract floor (bench/workers/floor.ts)",
      port: PORTS.floor,
      server: servers.floor,
      headers: bearer,
      authenticates: true,
    },
    {
      name: "peer",
      label: "peer: Hono + hono/jwt (bench/workers/peer.ts)",
      port: PORTS.peer,
      server: servers.peer,
      headers: (token) => ({ ...bearer(token), "X-Gateway-Assertion": assertionFor("GET", API_PATH) }),
      authenticates: true,
    },
    {
      name: "gateway",
      label: "through the gateway",
      port: PORTS.services,
      server: servers.services,
      headers: bearer,
      authenticates: true,
    },
  ];
  const runs = await alternateLoad(targets, token, {
    reps: E2E_REPS,
    connections: CONNECTIONS,
    loadMs: LOAD_MS,
    probeMs: PROBE_MS,
    origin: servers.origin,
  });

  const summary = (name) => {
    const pick = (f) => medianOf(runs[name], f);
    return {
      rps: pick((r) => r.load.rps),
      overDirect: pairedMedian(runs[name], runs.direct, (a, b) => a.load.rps / b.load.rps),
      loadP50: pick((r) => r.load.p50),
      loadP99: pick((r) => r.load.p99),
      closedLoopMean: pick((r) => r.load.mean),
      probeP50: pick((r) => r.probe.p50),
      probeP99: pick((r) => r.probe.p99),
      addedP50Ms: pairedMedian(runs[name], runs.direct, (a, b) => a.probe.p50 - b.probe.p50),
      cpuFrontUs: name === "direct" ? undefined : pick((r) => r.cpuUs),
      cpuOriginUs: pick((r) => r.originCpuUs),
    };
  };
  /** Gateway against `name`, inside each repetition: req/s ratio, CPU and origin CPU differences (µs/request). */
  const against = (name) => ({
    throughput: pairedMedian(runs.services, runs[name], (a, b) => a.load.rps / b.load.rps),
    cpuUs: pairedMedian(runs.services, runs[name], (a, b) => a.cpuUs - b.cpuUs),
    originCpuUs: pairedMedian(runs.services, runs[name], (a, b) => a.originCpuUs - b.originCpuUs),
  });
  const result = {
    ...Object.fromEntries(targets.map(({ name }) => [name, summary(name)])),
    gatewayVsForward: against("forward"),
    gatewayVsPeer: against("peer"),
    gatewayVsFloor: against("floor"),
  };
  log(`\n## 2. End to end: GET ${API_PATH}, bare workerd, forwarding to http://127.0.0.1:${PORTS.origin}`);
  log(
    `(medians of ${E2E_REPS} alternating repetitions; loaded: ${CONNECTIONS} keep-alive connections, closed loop, ${LOAD_MS / 1000} s; probe: 1 connection, ${PROBE_MS / 1000} s)`,
  );
  log(
    "| path | req/s loaded | × direct | p50 ms loaded | p99 ms loaded | mean ms (closed loop) | probe p50 ms | probe p99 ms | added probe p50 ms | front worker CPU µs/req | origin CPU µs/req |",
  );
  log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const { name, label } of targets) {
    const s = result[name];
    const direct = name === "direct";
    log(
      `| ${label} | ${fmt(s.rps)} | ${fmt(s.overDirect, 2)} | ${fmt(s.loadP50, 2)} | ${fmt(s.loadP99, 2)} | ${fmt(s.closedLoopMean, 2)} | ${fmt(s.probeP50, 3)} | ${fmt(s.probeP99, 3)} | ${direct ? "—" : fmt(s.addedP50Ms, 3)} | ${direct ? "—" : fmt(s.cpuFrontUs)} | ${fmt(s.cpuOriginUs)} |`,
    );
  }
  const { gateway, gatewayVsForward: forward, gatewayVsPeer: peer, gatewayVsFloor: floor } = result;
  log("(medians of per-repetition values)");
  log(
    `against direct: gateway ÷ direct = ${fmt(gateway.overDirect, 2)}× (target ≥ 0.6) ${met(gateway.overDirect >= 0.6)}; ` +
      `single-connection added p50 = ${fmt(gateway.addedP50Ms, 3)} ms (target ≤ 0.3) ${met(gateway.addedP50Ms <= 0.3)}`,
  );
  log(
    `against the bare forwarder: gateway ÷ forwarder = ${fmt(forward.throughput, 2)}× (target ≥ 0.85) ${met(forward.throughput >= 0.85)}; ` +
      `gateway CPU − forwarder CPU = ${fmt(forward.cpuUs)} µs/req (target ≤ 40) ${met(forward.cpuUs <= 40)}; ` +
      `origin CPU through the gateway − through the forwarder = ${fmt(forward.originCpuUs)} µs/req (target ≤ 15) ${met(forward.originCpuUs <= 15)}`,
  );
  log(
    `against the peer: gateway ÷ peer = ${fmt(peer.throughput, 2)}×; gateway CPU − peer CPU = ${fmt(peer.cpuUs)} µs/req; ` +
      `origin CPU, gateway − peer = ${fmt(peer.originCpuUs)} µs/req`,
  );
  log(
    `against the contract floor: gateway CPU − floor CPU = ${fmt(floor.cpuUs)} µs/req (the gateway's own logic); ` +
      `gateway ÷ floor = ${fmt(floor.throughput, 2)}×; origin CPU, gateway − floor = ${fmt(floor.originCpuUs)} µs/req`,
  );
  return result;
}

/**
 * Part 5: startup. `wrangler check startup --worker` evaluates each upload bundle once under the V8
 * profiler; active time = the profile's samples minus `(idle)` ones. Gateway and forwarder alternate.
 */
async function startupBench() {
  const names = ["gateway", "forward"];
  const runs = Object.fromEntries(names.map((name) => [name, { active: [], capped: [], program: [] }]));
  for (let rep = 0; rep < STARTUP_REPS; rep++) {
    for (const name of rep % 2 ? [...names].reverse() : names) {
      const profile = await startupProfile(
        ROOT,
        join(OUT, `startup/${name}.bundle`),
        join(OUT, `startup/${name}.cpuprofile`),
      );
      runs[name].active.push(profile.activeUs / 1000);
      runs[name].capped.push(profile.cappedActiveUs / 1000);
      runs[name].program.push(profile.programUs / 1000);
    }
  }
  const summary = (name) => ({
    activeMs: median(runs[name].active),
    cappedActiveMs: median(runs[name].capped),
    programMs: median(runs[name].program),
    activeRunsMs: runs[name].active,
  });
  const result = { reps: STARTUP_REPS, gateway: summary("gateway"), forward: summary("forward") };
  result.gatewayMinusForwardMs = result.services.activeMs - result.forward.activeMs;
  result.gatewayOverForward = result.forward.activeMs > 0 ? result.services.activeMs / result.forward.activeMs : null;
  result.cappedGatewayOverForward =
    result.forward.cappedActiveMs > 0 ? result.services.cappedActiveMs / result.forward.cappedActiveMs : null;
  log(
    `\n## 5. Startup: wrangler check startup --worker <upload bundle>: active CPU of the profile (samples minus idle), medians of ${STARTUP_REPS}, alternating`,
  );
  log("| bundle | active ms | active ms, gaps capped | of which (program) ms | active ms per run |");
  log("|---|---:|---:|---:|---|");
  const labels = { gateway: "production gateway", forward: "bare forwarder" };
  for (const name of names) {
    const s = result[name];
    log(
      `| ${labels[name]} | ${fmt(s.activeMs, 1)} | ${fmt(s.cappedActiveMs, 1)} | ${fmt(s.programMs, 1)} | ${s.activeRunsMs.map((v) => fmt(v, 1)).join(", ")} |`,
    );
  }
  const ratio = (value) => (value === null ? "n/a" : `${fmt(value, 1)}×`);
  log(
    `gateway − forwarder = ${fmt(result.gatewayMinusForwardMs, 1)} ms; gateway ÷ forwarder = ${ratio(result.gatewayOverForward)} (gaps capped: ${ratio(result.cappedGatewayOverForward)}); samples are ~1.1 ms apart`,
  );
  return result;
}

/** Part 4: size of the production bundle as `wrangler deploy --dry-run --outdir` wrote it. */
function sizeReport(bundle) {
  const files = bundle.modules.map((name) => readFileSync(join(bundle.dir, name)));
  const raw = files.reduce((sum, file) => sum + file.byteLength, 0);
  const gzip = files.reduce((sum, file) => sum + gzipSync(file, { level: 9 }).byteLength, 0);
  const wrangler = /Total Upload: ([\d.]+ KiB) \/ gzip: ([\d.]+ KiB)/.exec(bundle.stdout);
  log(`\n## 4. Production bundle (${bundle.modules.join(", ")} from wrangler deploy --dry-run --outdir)`);
  log(
    `raw ${fmt(raw / 1024, 1)} KiB, gzip -9 ${fmt(gzip / 1024, 1)} KiB${wrangler ? ` (wrangler reports ${wrangler[1]} / gzip ${wrangler[2]})` : ""}`,
  );
  return {
    rawKiB: raw / 1024,
    gzipKiB: gzip / 1024,
    wrangler: wrangler ? { total: wrangler[1], gzip: wrangler[2] } : undefined,
  };
}

async function main() {
  const started = performance.now();
  const { servers, gatewayBundle } = await prepare();
  const results = { date: new Date().toISOString(), machine: { cpus: cpus().length, node: process.version } };
  results.verify = await verifyBench();
  results.observe = await observeBench();
  results.login = await loginBench(servers);
  results.e2e = await e2eBench(servers);
  results.size = sizeReport(gatewayBundle);
  results.startup = await startupBench();
  writeFileSync(join(OUT, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  log(`\nresults written to bench/out/results.json; total ${fmt((performance.now() - started) / 1000, 0)} s`);
}

await runBounded("bench", main, TIME_LIMIT_MS);
