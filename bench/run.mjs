// `npm run bench`: the verify hot path, end-to-end gateway overhead, login cost and bundle size, all
// measured inside bare workerd from outside over loopback HTTP; every server is stopped by its PID group.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { assertionFor, SECRETS } from "./lib/fixtures.mjs";
import { gatewayServices, wranglerSettings } from "./lib/gateway-stack.mjs";
import { closedLoop, Connection, median, once, quantile, requestBytes } from "./lib/http.mjs";
import {
  buildUploadBundle,
  buildWorker,
  cpuSeconds,
  startupProfile,
  startWorkerd,
  stopAll,
  stopAllNow,
  textBindings,
  workerBlock,
  writeConfig,
} from "./lib/servers.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "bench/out");
const PORT_BASE = Number(process.env.BENCH_PORT_BASE ?? 9130);
const PORTS = { origin: PORT_BASE + 1, gateway: PORT_BASE + 2, verify: PORT_BASE + 3, forward: PORT_BASE + 4 };
const REPS = Math.max(5, Number(process.env.BENCH_REPS ?? 7));
const E2E_REPS = Math.max(5, Number(process.env.BENCH_E2E_REPS ?? 5));
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const LOAD_MS = Number(process.env.BENCH_LOAD_MS ?? 2500);
const PROBE_MS = Number(process.env.BENCH_PROBE_MS ?? 1500);
const LOGINS = Number(process.env.BENCH_LOGINS ?? 20);
const STARTUP_REPS = Math.max(3, Number(process.env.BENCH_STARTUP_REPS ?? 5));
const TIME_LIMIT_MS = 285_000;
const VARIANTS = ["gateway", "gateway-fresh", "floor", "jose", "jose-key"];
const API_PATH = "/grids/1";
const SEED = { email: "architect@acme.example", password: "gridgate-dev-password" };

/** Bench-only secrets (≥ 32 bytes), used nowhere else. */

const log = (...args) => console.log(...args);
const fmt = (value, digits = 0) =>
  Number.isFinite(value)
    ? value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "n/a";

/** Builds every bundle and writes the three workerd configs; returns how to reach each server. */
async function prepare() {
  mkdirSync(join(OUT, "startup"), { recursive: true });
  const demoToml = join(ROOT, "examples/demo-origin/wrangler.toml");
  const useDemo = existsSync(demoToml) && process.env.BENCH_ORIGIN !== "bench";
  const build = (name, config) =>
    buildWorker(ROOT, config, join(OUT, name)).then((result) => ({ ...result, dir: join(OUT, name) }));
  const started = performance.now();
  const [gateway, verify, storage, origin, forward] = await Promise.all([
    build("gateway", join(ROOT, "wrangler.toml")),
    build("verify", join(ROOT, "bench/wrangler.verify.toml")),
    build("storage", join(ROOT, "bench/wrangler.storage.toml")),
    build("origin", useDemo ? demoToml : join(ROOT, "bench/wrangler.origin.toml")),
    build("forward", join(ROOT, "bench/wrangler.forward.toml")),
    buildUploadBundle(ROOT, join(ROOT, "wrangler.toml"), join(OUT, "startup/gateway.bundle")),
    buildUploadBundle(ROOT, join(ROOT, "bench/wrangler.forward.toml"), join(OUT, "startup/forward.bundle")),
  ]);
  log(
    `built 5 bundles (and the gateway's and forwarder's upload bundles for the startup profile) with wrangler deploy --dry-run in ${fmt((performance.now() - started) / 1000, 1)} s`,
  );

  const { vars, compatibilityDate, durableObjects } = wranglerSettings(join(ROOT, "wrangler.toml"));
  const env = { ...vars, ...SECRETS };
  const worker = (bundle, bindings, extra) =>
    `worker = ${workerBlock({ configDir: OUT, dir: bundle.dir, modules: bundle.modules, compatibilityDate, bindings, extra })}`;

  writeConfig(join(OUT, "origin.capnp"), {
    port: PORTS.origin,
    entry: "origin",
    services: [
      [
        "origin",
        worker(origin, textBindings({ ISSUER: env.ISSUER ?? "gridgate", ASSERTION_SECRET: SECRETS.ASSERTION_SECRET })),
      ],
    ],
  });
  writeConfig(join(OUT, "gateway.capnp"), {
    port: PORTS.gateway,
    entry: "gateway",
    services: gatewayServices({
      root: ROOT,
      out: OUT,
      gateway,
      storage,
      compatibilityDate,
      durableObjects,
      pepper: SECRETS.PASSWORD_PEPPER,
      // The login run sends BENCH_LOGINS wrong passwords for one account: keep the per-account back-off (429) out of it.
      env: { ...env, ORIGIN_URL: `http://127.0.0.1:${PORTS.origin}`, LOGIN_FREE_ATTEMPTS: String(10 * LOGINS + 10) },
    }),
  });
  writeConfig(join(OUT, "verify.capnp"), {
    port: PORTS.verify,
    entry: "verify",
    services: [["verify", worker(verify, textBindings(env))]],
  });
  writeConfig(join(OUT, "forward.capnp"), {
    port: PORTS.forward,
    entry: "forward",
    services: [
      ["forward", worker(forward, textBindings({ ORIGIN_URL: `http://127.0.0.1:${PORTS.origin}` }))],
      ["internet", `network = (allow = ["public", "private", "local"])`],
    ],
  });

  const servers = {
    origin: await startWorkerd("origin", join(OUT, "origin.capnp"), PORTS.origin, join(OUT, "origin.log")),
    gateway: await startWorkerd("gateway", join(OUT, "gateway.capnp"), PORTS.gateway, join(OUT, "gateway.log")),
    verify: await startWorkerd("verify", join(OUT, "verify.capnp"), PORTS.verify, join(OUT, "verify.log")),
    forward: await startWorkerd("forward", join(OUT, "forward.capnp"), PORTS.forward, join(OUT, "forward.log")),
  };
  log(
    `workerd serving on 127.0.0.1: origin ${PORTS.origin} (${useDemo ? "examples/demo-origin" : "bench/workers/origin.ts"}), gateway ${PORTS.gateway}, verify bench ${PORTS.verify}, bare forwarder ${PORTS.forward}`,
  );
  return { servers, useDemo, issuer: env.ISSUER ?? "gridgate", gatewayBundle: gateway };
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
    ratios.floor.push(rep_.gateway / rep_.floor);
    ratios.jose.push(rep_.gateway / rep_.jose);
  }
  connection.close();

  const floor = median(ops.floor);
  const labels = {
    gateway: "gateway verifyAccessToken (format + signature + claims), same token",
    "gateway-fresh": "gateway verifyAccessToken, a never-seen token each call",
    floor: "floor: crypto.subtle.verify, cached CryptoKey",
    jose: "jose jwtVerify, Uint8Array secret",
    "jose-key": "jose jwtVerify, cached CryptoKey (reference)",
  };
  log(`| variant | N per request | verifications/s (median of ${REPS}) | min–max | × floor |`);
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
    `gateway ÷ floor = ${fmt(result.gatewayOverFloor, 2)}× (target ≥ 0.5) ${result.gatewayOverFloor >= 0.5 ? "MET" : "NOT MET"}; ` +
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

/** Part 3: sequential logins over one connection; wall time and workerd CPU per login. */
async function loginBench(servers) {
  const connection = new Connection(PORTS.gateway);
  await connection.open();
  const login = async (password, i) => {
    const body = JSON.stringify({ email: SEED.email, password });
    const started = performance.now();
    const response = await connection.send(
      requestBytes(
        PORTS.gateway,
        "POST",
        "/authenticate",
        { "Content-Type": "application/json", "CF-Connecting-IP": `10.9.${i >> 8}.${i & 255}` },
        body,
      ),
    );
    return { ms: performance.now() - started, response };
  };
  const first = await login(SEED.password, 0);
  if (first.response.status !== 200)
    throw new Error(`login failed: HTTP ${first.response.status} ${first.response.body}`);
  const token = JSON.parse(first.response.body.toString()).access_token;
  for (let i = 1; i <= 2; i++) await login(SEED.password, i);

  const measure = async (password, expect, offset) => {
    const times = [];
    const cpuBefore = cpuSeconds(servers.gateway.pid);
    for (let i = 0; i < LOGINS; i++) {
      const { ms, response } = await login(password, offset + i);
      if (response.status !== expect) throw new Error(`login expected ${expect}, got ${response.status}`);
      times.push(ms);
    }
    const cpu = cpuSeconds(servers.gateway.pid) - cpuBefore;
    times.sort((a, b) => a - b);
    return { p50: quantile(times, 0.5), p99: quantile(times, 0.99), cpuMsPerLogin: (cpu * 1000) / LOGINS };
  };
  const ok = await measure(SEED.password, 200, 100);
  const wrong = await measure("not-the-password", 401, 200);

  // Refresh: a chain of rotations (each presents the successor of the one before), as a client does.
  let refreshToken = JSON.parse(first.response.body.toString()).refresh_token;
  const refreshOnce = async (i) => {
    const started = performance.now();
    const response = await connection.send(
      requestBytes(
        PORTS.gateway,
        "POST",
        "/authenticate/refresh",
        { "Content-Type": "application/json", "CF-Connecting-IP": `10.8.${i >> 8}.${i & 255}` },
        JSON.stringify({ refresh_token: refreshToken }),
      ),
    );
    if (response.status !== 200) throw new Error(`refresh expected 200, got ${response.status} ${response.body}`);
    refreshToken = JSON.parse(response.body.toString()).refresh_token;
    return performance.now() - started;
  };
  for (let i = 0; i < 2; i++) await refreshOnce(i);
  const refreshTimes = [];
  const refreshCpuBefore = cpuSeconds(servers.gateway.pid);
  for (let i = 0; i < LOGINS; i++) refreshTimes.push(await refreshOnce(300 + i));
  const refreshCpu = cpuSeconds(servers.gateway.pid) - refreshCpuBefore;
  refreshTimes.sort((a, b) => a - b);
  const refresh = {
    p50: quantile(refreshTimes, 0.5),
    p99: quantile(refreshTimes, 0.99),
    cpuMsPerLogin: (refreshCpu * 1000) / LOGINS,
  };
  connection.close();
  log(`\n## 3. Login and refresh: ${LOGINS} sequential requests each, one keep-alive connection`);
  log("| case | p50 ms | p99 ms | gateway workerd CPU ms / login |");
  log("|---|---:|---:|---:|");
  log(`| correct password → 200 | ${fmt(ok.p50, 1)} | ${fmt(ok.p99, 1)} | ${fmt(ok.cpuMsPerLogin, 1)} |`);
  log(`| wrong password → 401 | ${fmt(wrong.p50, 1)} | ${fmt(wrong.p99, 1)} | ${fmt(wrong.cpuMsPerLogin, 1)} |`);
  log(
    `| refresh (POST /authenticate/refresh, rotating) → 200 | ${fmt(refresh.p50, 1)} | ${fmt(refresh.p99, 1)} | ${fmt(refresh.cpuMsPerLogin, 1)} |`,
  );
  return { token, ok, wrong, refresh };
}

/** Part 2: straight to the origin vs through the gateway, alternating; single-connection probe and a loaded run. */
async function e2eBench(servers, token, { useDemo, issuer }) {
  const originHeaders = () =>
    useDemo
      ? {
          "X-Gateway-Assertion": assertionFor("GET", API_PATH, issuer),
          "X-Member-Entity-Identifier": "o6q2is",
          "X-Organisation-Entity-Identifier": "m7l9hw",
        }
      : {};
  const directBytes = () => requestBytes(PORTS.origin, "GET", API_PATH, originHeaders());
  const forwardBytes = () =>
    requestBytes(PORTS.forward, "GET", API_PATH, { Authorization: `Bearer ${token}`, ...originHeaders() });
  const gatewayBytes = requestBytes(PORTS.gateway, "GET", API_PATH, { Authorization: `Bearer ${token}` });
  const tamperedAt = token.length - 20;
  const tampered = token.slice(0, tamperedAt) + (token[tamperedAt] === "A" ? "B" : "A") + token.slice(tamperedAt + 1);

  const direct = await once(PORTS.origin, directBytes());
  const through = await once(PORTS.gateway, gatewayBytes);
  const refused = await once(
    PORTS.gateway,
    requestBytes(PORTS.gateway, "GET", API_PATH, { Authorization: `Bearer ${tampered}` }),
  );
  if (direct.status !== 200) throw new Error(`origin answered ${direct.status} directly: ${direct.body}`);
  if (through.status !== 200 || !through.body.includes("o6q2is"))
    throw new Error(`gateway answered ${through.status}: ${through.body}`);
  if (refused.status !== 401) throw new Error(`gateway accepted a tampered token (HTTP ${refused.status})`);
  if (/content-encoding/i.test(through.head))
    throw new Error("gateway response is compressed although the client sent Accept-Encoding: identity");

  if ((await once(PORTS.forward, forwardBytes())).status !== 200)
    throw new Error("the bare forwarder did not get a 200 from the origin");

  const names = ["direct", "forward", "gateway"];
  const targets = {
    direct: { port: PORTS.origin, bytes: directBytes, server: servers.origin },
    forward: { port: PORTS.forward, bytes: forwardBytes, server: servers.forward },
    gateway: { port: PORTS.gateway, bytes: () => gatewayBytes, server: servers.gateway },
  };
  for (const name of names)
    await closedLoop(targets[name].port, targets[name].bytes(), { connections: CONNECTIONS, durationMs: 1000 });

  const runs = { direct: [], forward: [], gateway: [] };
  const ratio = { gateway: [], forward: [] };
  const added = { gateway: [], forward: [] };
  const vsForward = { throughput: [], cpuUs: [], originCpuUs: [] };
  for (let rep = 0; rep < E2E_REPS; rep++) {
    const order = names.map((_, i) => names[(i + rep) % names.length]);
    if (rep % 2) order.reverse();
    const result = {};
    for (const name of order) {
      const { port, bytes, server } = targets[name];
      const probe = await closedLoop(port, bytes(), { connections: 1, durationMs: PROBE_MS });
      const cpu = { front: cpuSeconds(server.pid), origin: cpuSeconds(servers.origin.pid) };
      const load = await closedLoop(port, bytes(), { connections: CONNECTIONS, durationMs: LOAD_MS });
      const cpuFrontUs = name === "direct" ? undefined : ((cpuSeconds(server.pid) - cpu.front) / load.requests) * 1e6;
      const cpuOriginUs = ((cpuSeconds(servers.origin.pid) - cpu.origin) / load.requests) * 1e6;
      if (probe.bad || load.bad) throw new Error(`${name}: ${probe.bad + load.bad} responses were not 200`);
      result[name] = { probe, load, cpuFrontUs, cpuOriginUs };
      runs[name].push(result[name]);
    }
    for (const name of ["gateway", "forward"]) {
      ratio[name].push(result[name].load.rps / result.direct.load.rps);
      added[name].push(result[name].probe.p50 - result.direct.probe.p50);
    }
    vsForward.throughput.push(result.gateway.load.rps / result.forward.load.rps);
    vsForward.cpuUs.push(result.gateway.cpuFrontUs - result.forward.cpuFrontUs);
    vsForward.originCpuUs.push(result.gateway.cpuOriginUs - result.forward.cpuOriginUs);
  }

  const summary = (name) => {
    const pick = (f) => median(runs[name].map(f));
    return {
      rps: pick((r) => r.load.rps),
      loadP50: pick((r) => r.load.p50),
      loadP99: pick((r) => r.load.p99),
      closedLoopMean: pick((r) => r.load.mean),
      probeP50: pick((r) => r.probe.p50),
      probeP99: pick((r) => r.probe.p99),
      cpuFrontUs: name === "direct" ? undefined : pick((r) => r.cpuFrontUs),
      cpuOriginUs: pick((r) => r.cpuOriginUs),
    };
  };
  const result = {
    direct: summary("direct"),
    forward: summary("forward"),
    gateway: summary("gateway"),
    throughputRatio: median(ratio.gateway),
    addedP50Ms: median(added.gateway),
    forwardThroughputRatio: median(ratio.forward),
    forwardAddedP50Ms: median(added.forward),
    gatewayOverForward: median(vsForward.throughput),
    gatewayCpuOverForwardUs: median(vsForward.cpuUs),
    originCpuOverForwardUs: median(vsForward.originCpuUs),
  };
  log(`\n## 2. End to end: GET ${API_PATH}, bare workerd, forwarding to ORIGIN_URL=http://127.0.0.1:${PORTS.origin}`);
  log(
    `(medians of ${E2E_REPS} alternating repetitions; loaded: ${CONNECTIONS} keep-alive connections, closed loop, ${LOAD_MS / 1000} s; probe: 1 connection, ${PROBE_MS / 1000} s)`,
  );
  log(
    "| path | req/s loaded | × direct | p50 ms loaded | p99 ms loaded | mean ms (closed loop) | probe p50 ms | probe p99 ms | added probe p50 ms | front worker CPU µs/req | origin CPU µs/req |",
  );
  log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  const labels = {
    direct: "straight to origin",
    forward: "bare forwarding Worker (reference)",
    gateway: "through the gateway",
  };
  for (const name of names) {
    const s = result[name];
    const times =
      name === "direct" ? "1.00" : fmt(name === "gateway" ? result.throughputRatio : result.forwardThroughputRatio, 2);
    const addedP50 =
      name === "direct" ? "—" : fmt(name === "gateway" ? result.addedP50Ms : result.forwardAddedP50Ms, 3);
    log(
      `| ${labels[name]} | ${fmt(s.rps)} | ${times} | ${fmt(s.loadP50, 2)} | ${fmt(s.loadP99, 2)} | ${fmt(s.closedLoopMean, 2)} | ${fmt(s.probeP50, 3)} | ${fmt(s.probeP99, 3)} | ${addedP50} | ${s.cpuFrontUs === undefined ? "—" : fmt(s.cpuFrontUs)} | ${fmt(s.cpuOriginUs)} |`,
    );
  }
  log(
    `throughput gateway ÷ direct = ${fmt(result.throughputRatio, 2)}× (target ≥ 0.6) ${result.throughputRatio >= 0.6 ? "MET" : "NOT MET"}; ` +
      `single-connection added p50 = ${fmt(result.addedP50Ms, 3)} ms (target ≤ 0.3) ${result.addedP50Ms <= 0.3 ? "MET" : "NOT MET"}  (medians of per-repetition values)`,
  );
  const met = (ok) => (ok ? "MET" : "NOT MET");
  log(
    `against the bare forwarder: throughput gateway ÷ forwarder = ${fmt(result.gatewayOverForward, 2)}× (target ≥ 0.85) ${met(result.gatewayOverForward >= 0.85)}; ` +
      `gateway CPU − forwarder CPU = ${fmt(result.gatewayCpuOverForwardUs)} µs/req (target ≤ 40) ${met(result.gatewayCpuOverForwardUs <= 40)}; ` +
      `origin CPU through the gateway − through the forwarder = ${fmt(result.originCpuOverForwardUs)} µs/req (target ≤ 15) ${met(result.originCpuOverForwardUs <= 15)}  (medians of per-repetition values)`,
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
  result.gatewayMinusForwardMs = result.gateway.activeMs - result.forward.activeMs;
  result.gatewayOverForward = result.forward.activeMs > 0 ? result.gateway.activeMs / result.forward.activeMs : null;
  result.cappedGatewayOverForward =
    result.forward.cappedActiveMs > 0 ? result.gateway.cappedActiveMs / result.forward.cappedActiveMs : null;
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
  const prepared = await prepare();
  const results = {
    date: new Date().toISOString(),
    machine: { cpus: (await import("node:os")).cpus().length, node: process.version },
  };
  results.verify = await verifyBench();
  results.observe = await observeBench();
  results.login = await loginBench(prepared.servers);
  results.e2e = await e2eBench(prepared.servers, results.login.token, prepared);
  delete results.login.token;
  results.size = sizeReport(prepared.gatewayBundle);
  results.startup = await startupBench();
  writeFileSync(join(OUT, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  log(`\nresults written to bench/out/results.json; total ${fmt((performance.now() - started) / 1000, 0)} s`);
}

process.on("exit", stopAllNow);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => stopAll().finally(() => process.exit(130)));
const limit = setTimeout(() => {
  console.error(`bench: time limit of ${TIME_LIMIT_MS / 1000} s reached, stopping`);
  stopAll().finally(() => process.exit(2));
}, TIME_LIMIT_MS);

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  console.error(`bench failed: ${error instanceof Error ? error.stack : error}`);
} finally {
  clearTimeout(limit);
  const stopped = await stopAll();
  log(`stopped ${stopped.join(", ") || "nothing"}`);
}
process.exit(failed ? 1 : 0);
