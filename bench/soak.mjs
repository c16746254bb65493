// `npm run soak [-- --seconds N]`: mixed traffic against the gateway under bare workerd (as `npm run bench` runs it),
// loopback only; every answer's status checked against what its kind of request must get; RSS of workerd before/after.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { MEMBER, SECRETS, SEED, signHs256, tampered } from "./lib/fixtures.mjs";
import { Connection, requestBytes } from "./lib/http.mjs";
import { runBounded } from "./lib/servers.mjs";
import { OUT, prepareServers, serverPorts, startServers } from "./lib/stack.mjs";

const { values: options } = parseArgs({
  options: {
    seconds: { type: "string", default: "60" },
    connections: { type: "string", default: "6" },
    "port-base": { type: "string", default: process.env.SOAK_PORT_BASE ?? "9150" },
  },
});
const SECONDS = Number(options.seconds);
const CONNECTIONS = Number(options.connections);
if (!(SECONDS > 0) || !(CONNECTIONS > 0)) throw new Error("--seconds and --connections must be positive numbers");
const PORTS = serverPorts(Number(options["port-base"]));
const DIR = join(OUT, "soak");
/**
 * Warm-up before the "start" RSS reading: traffic in slices of this many seconds until the RSS grew by under
 * {@link WARMUP_STEADY} in two slices running (caches filled, code compiled, the heap at its working size),
 * at least {@link WARMUP_MIN_SECONDS}, at most {@link WARMUP_MAX_SECONDS}.
 */
const WARMUP_SLICE_SECONDS = 10;
const WARMUP_MIN_SECONDS = 20;
const WARMUP_MAX_SECONDS = 180;
const WARMUP_STEADY = 0.05;
/** End RSS above this multiple of the start RSS fails the run. */
const RSS_GROWTH_LIMIT = 1.5;

/** Seeded accounts (scripts/seed-data.ts) that log in, by organisation; `wrong` only ever gets wrong passwords. */
const ACCOUNTS = {
  architect: { email: "architect@acme.example", organisation: "m7l9hw", member: "o6q2is" },
  builder: { email: "builder@acme.example", organisation: "m7l9hw", member: "b8k3zt" },
  viewer: { email: "viewer@acme.example", organisation: "m7l9hw", member: "v4n7pq" },
  owner: { email: "owner@enterprise.example", organisation: "q1w2e3", member: "e9w1ck" },
};
const WRONG_PASSWORD_EMAIL = "reader@acme.example";
const FREE_PLAN_EMAIL = "free@free.example";

const pick = (list) => list[Math.floor(Math.random() * list.length)];
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** A 10-minute dynamic-secret token of the seeded architect, signed with the secret `kid` as an integration would. */
function dynamicToken({ kid, secret }) {
  const claims = {
    iat: nowSeconds(),
    exp: nowSeconds() + 600,
    memberEntityIdentifier: ACCOUNTS.architect.member,
    organisationEntityIdentifier: ACCOUNTS.architect.organisation,
    scope: "organisation",
    secretType: "dynamic",
  };
  return signHs256(claims, secret, { kid });
}

/** Resident set size of `pid` in MiB. */
function rssMiB(pid) {
  const kb = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
  return kb / 1024;
}

/** Builds and starts the gateway with the bench storage and the bench origin; returns the gateway's workerd. */
async function start() {
  await prepareServers({ out: DIR, ports: PORTS, servers: ["origin", "gateway"], benchOrigin: true });
  return (await startServers(DIR, PORTS, ["origin", "gateway"])).services;
}

/** Counts of the run; `unexpected` keeps the first few for the report. */
const tally = { requests: 0, serverErrors: 0, unexpected: 0, byKind: new Map(), examples: [] };

/** One connection's client: sends a request of `kind` and checks its status is one of `expected`. */
class Client {
  constructor() {
    this.connection = new Connection(PORTS.services);
  }

  async open() {
    await this.connection.open();
  }

  async send(kind, expected, method, path, { headers = {}, body } = {}) {
    const json = body === undefined ? undefined : JSON.stringify(body);
    const allHeaders = json === undefined ? headers : { "Content-Type": "application/json", ...headers };
    let response;
    try {
      response = await this.connection.send(requestBytes(PORTS.services, method, path, allHeaders, json));
    } catch (error) {
      // A dropped connection is a defect too: count it, reconnect, go on.
      response = { status: 0, body: Buffer.from(String(error)) };
      this.connection.close();
      this.connection = new Connection(PORTS.services);
      await this.connection.open();
    }
    tally.requests += 1;
    const counts = tally.byKind.get(kind) ?? { requests: 0, unexpected: 0 };
    counts.requests += 1;
    if (response.status >= 500) tally.serverErrors += 1;
    if (!expected.includes(response.status)) {
      tally.unexpected += 1;
      counts.unexpected += 1;
      if (tally.examples.length < 10)
        tally.examples.push(
          `${kind}: ${method} ${path} → ${response.status} ${response.body.toString().slice(0, 300)}`,
        );
    }
    tally.byKind.set(kind, counts);
    let parsed;
    try {
      parsed = response.body.length ? JSON.parse(response.body.toString()) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: response.status, body: parsed };
  }
}

/** Logins in flight per email: one at a time, since concurrent attempts on one account are rationed (429) by design. */
const loginQueues = new Map();

/** A session of one account held by one connection: its access token and its current refresh token. */
async function newSession(client, account) {
  const previous = loginQueues.get(account.email) ?? Promise.resolve();
  const attempt = previous.then(() =>
    client.send("login right", [200], "POST", "/authenticate", {
      body: { email: account.email, password: SEED.password },
    }),
  );
  loginQueues.set(
    account.email,
    attempt.catch(() => undefined),
  );
  const { status, body } = await attempt;
  return status === 200 ? { account, access: body.access_token, refresh: body.refresh_token } : undefined;
}

const RANDOM_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const RANDOM_SEGMENTS = [
  "grids",
  "grids/12",
  "grids/12/cells",
  "users",
  "a%2fb",
  "x/../y",
  "%ZZ",
  "authenticate/nope",
  "",
];

/**
 * Each connection's mix: proxied requests with valid fixed-secret tokens of several organisations and with
 * dynamic-secret tokens, tampered, expired and missing tokens, logins right and wrong, refreshes, revocations,
 * secret create/revoke, random paths and methods.
 */
async function traffic(client, deadline) {
  const sessions = [];
  for (const account of Object.values(ACCOUNTS)) {
    const session = await newSession(client, account);
    if (session) sessions.push(session);
  }
  if (sessions.length === 0) throw new Error("no seeded account could log in; see bench/out/soak/gateway.log");
  const architect = sessions.find((session) => session.account === ACCOUNTS.architect);
  const dynamic = []; // { kid, secret } created by this connection
  const steps = [
    // valid fixed-secret tokens of two organisations (plan professional and enterprise)
    [
      30,
      async () => {
        const session = pick(sessions);
        await client.send("valid fixed token", [200], "GET", `/grids/${Math.floor(Math.random() * 100)}`, {
          headers: { Authorization: `Bearer ${session.access}` },
        });
      },
    ],
    [
      6,
      () =>
        client.send("tampered token", [401], "GET", "/grids/1", {
          headers: { Authorization: `Bearer ${tampered(pick(sessions).access)}` },
        }),
    ],
    [
      4,
      () => {
        const expired = signHs256(
          {
            iss: "gridgate",
            iat: nowSeconds() - 7200,
            exp: nowSeconds() - 3600,
            ...MEMBER,
            secretType: "fixed",
            jti: randomUUID(),
          },
          SECRETS.JWT_SECRET,
          { kid: "fixed" },
        );
        return client.send("expired token", [401], "GET", "/grids/1", {
          headers: { Authorization: `Bearer ${expired}` },
        });
      },
    ],
    [3, () => client.send("no token", [401], "GET", "/grids/1")],
    [2, () => client.send("health", [200], "GET", "/health")],
    [
      3,
      async () => {
        const session = await newSession(client, pick(Object.values(ACCOUNTS)));
        if (session) sessions[Math.floor(Math.random() * sessions.length)] = session;
      },
    ],
    [
      3,
      () =>
        client.send("login wrong password", [401, 429], "POST", "/authenticate", {
          body: { email: WRONG_PASSWORD_EMAIL, password: `wrong-${randomUUID()}` },
        }),
    ],
    [
      1,
      () =>
        client.send("login unknown email", [401, 429], "POST", "/authenticate", {
          body: { email: `nobody-${randomUUID()}@example.com`, password: "whatever-password" },
        }),
    ],
    [
      1,
      () =>
        client.send("login free plan", [403], "POST", "/authenticate", {
          body: { email: FREE_PLAN_EMAIL, password: SEED.password },
        }),
    ],
    [2, () => client.send("login bad body", [400], "POST", "/authenticate", { body: { email: 42 } })],
    [
      8,
      async () => {
        const session = pick(sessions);
        const { status, body } = await client.send("refresh", [200], "POST", "/authenticate/refresh", {
          body: { refresh_token: session.refresh },
        });
        if (status === 200) Object.assign(session, { access: body.access_token, refresh: body.refresh_token });
      },
    ],
    [
      2,
      () =>
        client.send("refresh unknown token", [401], "POST", "/authenticate/refresh", {
          body: { refresh_token: `rt_${Buffer.alloc(32, Math.random() * 255).toString("base64url")}` },
        }),
    ],
    [
      2,
      async () => {
        // log in, revoke the new session, its refresh token is refused
        const session = await newSession(client, pick(Object.values(ACCOUNTS)));
        if (!session) return;
        await client.send("revoke", [200], "POST", "/authenticate/revoke", {
          body: { refresh_token: session.refresh },
        });
        await client.send("refresh revoked token", [401], "POST", "/authenticate/refresh", {
          body: { refresh_token: session.refresh },
        });
      },
    ],
    [
      2,
      async () => {
        if (!architect) return;
        const headers = { Authorization: `Bearer ${architect.access}` };
        if (dynamic.length < 2) {
          const { status, body } = await client.send("secret create", [201, 409], "POST", "/authenticate/secrets", {
            headers,
            body: { label: "soak" },
          });
          if (status === 201) dynamic.push({ kid: body.kid, secret: body.secret });
        } else {
          const revoked = dynamic.shift();
          await client.send("secret revoke", [204], "DELETE", `/authenticate/secrets/${revoked.kid}`, { headers });
          const token = dynamicToken(revoked);
          await client.send("dynamic token of a revoked secret", [401], "GET", "/grids/1", {
            headers: { Authorization: `Bearer ${token}` },
          });
        }
      },
    ],
    [
      2,
      () =>
        architect &&
        client.send("secret list", [200], "GET", "/authenticate/secrets", {
          headers: { Authorization: `Bearer ${architect.access}` },
        }),
    ],
    [
      10,
      async () => {
        const live = pick(dynamic);
        if (!live) return;
        const token = dynamicToken(live);
        await client.send("valid dynamic token", [200], "GET", "/grids/7", {
          headers: { Authorization: `Bearer ${token}` },
        });
      },
    ],
    [
      8,
      () => {
        // a valid token, any method, any path: never a 5xx, never a 401
        const session = pick(sessions);
        return client.send(
          "random path and method",
          [200, 204, 400, 403, 404, 405],
          pick(RANDOM_METHODS),
          `/${pick(RANDOM_SEGMENTS)}`,
          {
            headers: { Authorization: `Bearer ${session.access}` },
          },
        );
      },
    ],
  ];
  const total = steps.reduce((sum, [weight]) => sum + weight, 0);
  while (Date.now() < deadline) {
    let roll = Math.random() * total;
    const step = steps.find(([weight]) => (roll -= weight) < 0) ?? steps[0];
    await step[1]();
  }
  // Leave no secret behind, so the next connection's creates stay under the limit of 10.
  for (const { kid } of dynamic) {
    await client.send("secret revoke", [204], "DELETE", `/authenticate/secrets/${kid}`, {
      headers: { Authorization: `Bearer ${architect.access}` },
    });
  }
}

/** Runs the traffic for `seconds`, printing the workerd RSS every tenth of the time. */
async function run(clients, seconds, pid, { sample = true } = {}) {
  const deadline = Date.now() + seconds * 1000;
  const started = Date.now();
  const sampler =
    sample &&
    setInterval(
      () =>
        console.log(
          `  ${Math.round((Date.now() - started) / 1000)} s: ${tally.requests} requests, rss ${rssMiB(pid).toFixed(1)} MiB`,
        ),
      Math.max(10_000, (seconds * 1000) / 10),
    );
  try {
    await Promise.all(clients.map((client) => traffic(client, deadline)));
  } finally {
    if (sampler) clearInterval(sampler);
  }
}

async function main() {
  const gateway = await start();
  const clients = Array.from({ length: CONNECTIONS }, () => new Client());
  await Promise.all(clients.map((client) => client.open()));
  let warmed = 0;
  let steadySlices = 0;
  let previous = rssMiB(gateway.pid);
  while (warmed < WARMUP_MAX_SECONDS && (warmed < WARMUP_MIN_SECONDS || steadySlices < 2)) {
    await run(clients, WARMUP_SLICE_SECONDS, gateway.pid, { sample: false });
    warmed += WARMUP_SLICE_SECONDS;
    const rss = rssMiB(gateway.pid);
    steadySlices = rss <= previous * (1 + WARMUP_STEADY) ? steadySlices + 1 : 0;
    previous = rss;
    console.log(`  warm-up ${warmed} s: ${tally.requests} requests, rss ${rss.toFixed(1)} MiB`);
  }
  const warm = { ...tally };
  tally.requests = 0;
  tally.serverErrors = 0;
  tally.unexpected = 0;
  const rssStart = rssMiB(gateway.pid);
  console.log(
    `soak: ${CONNECTIONS} connections, warm-up ${warmed} s (${warm.requests} requests, ${warm.serverErrors} 5xx, ${warm.unexpected} unexpected), then ${SECONDS} s`,
  );
  await run(clients, SECONDS, gateway.pid);
  const rssEnd = rssMiB(gateway.pid);
  for (const client of clients) client.connection.close();
  for (const [kind, counts] of [...tally.byKind].sort())
    console.log(`  ${kind}: ${counts.requests} (${counts.unexpected} unexpected)`);
  for (const example of tally.examples) console.log(`  unexpected: ${example}`);
  const serverErrors = tally.serverErrors + warm.serverErrors;
  const unexpected = tally.unexpected + warm.unexpected;
  console.log(
    `soak: ${tally.requests} requests, ${serverErrors} 5xx, ${unexpected} unexpected statuses, rss start ${rssStart.toFixed(1)} MiB end ${rssEnd.toFixed(1)} MiB`,
  );
  const grew = rssEnd > RSS_GROWTH_LIMIT * rssStart;
  if (grew) console.log(`soak: end RSS is over ${RSS_GROWTH_LIMIT}× the start RSS`);
  process.exitCode = serverErrors > 0 || unexpected > 0 || grew ? 1 : 0;
}

await runBounded("soak", main, (WARMUP_MAX_SECONDS + SECONDS + 300) * 1000);
