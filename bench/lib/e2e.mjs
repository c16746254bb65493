// End-to-end measurement shared by `npm run bench` and `npm run bench:floor`: every target checked first, then
// closed-loop load on each in turn, alternating, with the CPU its workerd and the origin's spent per request.
import { API_PATH, assertionFor, MEMBER, tampered } from "./fixtures.mjs";
import { closedLoop, median, once, requestBytes } from "./http.mjs";
import { cpuSeconds } from "./servers.mjs";

/**
 * A server under test: `name`, `port`, its workerd `server` (none when the target is the origin itself),
 * `headers(token)` of its `GET API_PATH`, and `authenticates` when it must refuse a tampered token.
 * @typedef {{ name: string, port: number, server?: { pid: number }, headers: (token: string) => object, authenticates?: boolean }} Target
 */

/** `Authorization: Bearer <token>`: all a client sends the gateway, the contract floor and the peer. */
export const bearer = (token) => ({ Authorization: `Bearer ${token}` });

/** What the origin checks when no gateway signs it: a fresh assertion and the identity, sent by the client. */
export const originHeaders = () => ({
  "X-Gateway-Assertion": assertionFor("GET", API_PATH),
  "X-Member-Entity-Id": String(MEMBER.memberEntityId),
  "X-Member-Entity-Identifier": MEMBER.memberEntityIdentifier,
  "X-Organisation-Entity-Identifier": MEMBER.organisationEntityIdentifier,
});

const bytesFor = (target, token) => requestBytes(target.port, "GET", API_PATH, target.headers(token));

/**
 * Before any timing: each target answers 200 with the member's identity echoed by the origin, uncompressed, and each
 * that authenticates answers a copy of the token with one signature character flipped with 401 (so nothing is fast
 * because it fails).
 */
async function checkTargets(targets, token) {
  for (const target of targets) {
    const good = await once(target.port, bytesFor(target, token));
    if (good.status !== 200 || !good.body.includes(MEMBER.memberEntityIdentifier))
      throw new Error(`${target.name} answered ${good.status}: ${good.body.toString().slice(0, 500)}`);
    if (/\r\ncontent-encoding:/i.test(good.head))
      throw new Error(`${target.name}: the response is compressed although the client sent Accept-Encoding: identity`);
    if (!target.authenticates) continue;
    const refused = await once(target.port, bytesFor(target, tampered(token)));
    if (refused.status !== 401) throw new Error(`${target.name} accepted a tampered token (HTTP ${refused.status})`);
  }
}

/**
 * After {@link checkTargets}, closed-loop load on each target in turn, `reps` times, after a one-second warm-up of each; the order rotates every
 * repetition and reverses every other one, so a drift of the machine's load spreads over all targets. Returns, per
 * target name, one entry per repetition: `load` (closedLoop's figures), `probe` (one connection for `probeMs`, when
 * set), `cpuUs` (the target's workerd CPU µs per request) and `originCpuUs` (the origin's). Any non-200 throws.
 */
export async function alternateLoad(targets, token, { reps, connections, loadMs, probeMs = 0, origin }) {
  await checkTargets(targets, token);
  for (const target of targets)
    await closedLoop(target.port, bytesFor(target, token), { connections, durationMs: 1000 });
  const runs = Object.fromEntries(targets.map((target) => [target.name, []]));
  for (let rep = 0; rep < reps; rep++) {
    const order = targets.map((_, i) => targets[(i + rep) % targets.length]);
    if (rep % 2) order.reverse();
    for (const target of order) {
      const bytes = bytesFor(target, token);
      const probe =
        probeMs > 0 ? await closedLoop(target.port, bytes, { connections: 1, durationMs: probeMs }) : undefined;
      const before = { front: target.server && cpuSeconds(target.server.pid), origin: cpuSeconds(origin.pid) };
      const load = await closedLoop(target.port, bytes, { connections, durationMs: loadMs });
      const bad = load.bad + (probe?.bad ?? 0);
      if (bad) throw new Error(`${target.name}: ${bad} responses were not 200`);
      runs[target.name].push({
        load,
        probe,
        cpuUs: target.server && ((cpuSeconds(target.server.pid) - before.front) / load.requests) * 1e6,
        originCpuUs: ((cpuSeconds(origin.pid) - before.origin) / load.requests) * 1e6,
      });
    }
  }
  return runs;
}

/** The median over repetitions of `f(run)`. */
export function medianOf(runs, f) {
  return median(runs.map(f));
}

/** The median over repetitions of `f(a, b)` of two targets' runs: a ratio or difference taken inside each repetition. */
export function pairedMedian(runsA, runsB, f) {
  return median(runsA.map((run, i) => f(run, runsB[i])));
}
