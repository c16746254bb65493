/**
 * Bench-only worker (never deployed): loops one token-verification variant N times over the same token
 * bytes (`/verify`), the whole gateway app in-process against a canned origin (`/app`, with the limit and
 * metrics bindings unbound or bound to in-process stand-ins), only the limit check and metrics write (`/observe`),
 * only what the access log decides for a request it samples out (`/access-log`), or one `X-Gateway-Assertion`
 * signed with each `ASSERTION_ALG` (`/sign`).
 */
import { jwtVerify } from "jose";
import gateway from "../../src/index";
import type { Bindings } from "../../src/config";
import { GatewayError } from "../../src/gateway-error";
import { signAssertion } from "../../src/proxy/assertion";
import { createServices, servicesOf, type Services } from "../../src/services";
import { closeScope, openScope, type RequestScope } from "../../src/http/scope";
import type { AccessClaims } from "../../src/tokens/claims";
import type { JwsSigner } from "../../src/tokens/sign";
import { routeKind } from "../../src/metrics";
import { pathOf } from "../../src/http/request-url";
import { issueAccessToken } from "../../src/tokens/access";
import { decodeBase64Url } from "../../src/tokens/base64url";

/** One verification of the fixture token (or its tampered copy); true when accepted. */
type Variant = (token: string, bytes: TokenBytes) => Promise<boolean>;

/** The pieces of a token a bare HMAC check needs, split once outside the loop. */
interface TokenBytes {
  signingInput: Uint8Array<ArrayBuffer>;
  signature: Uint8Array<ArrayBuffer>;
}

interface Fixture {
  good: { token: string; bytes: TokenBytes };
  /** Distinct tokens of the same shape (different `jti`), more than the verifier's caches hold. */
  fresh: string[];
  bad: { token: string; bytes: TokenBytes };
  key: CryptoKey;
  secret: Uint8Array<ArrayBuffer>;
}

const FRESH_TOKENS = 4096;
const encoder = new TextEncoder();
let fixture: Promise<Fixture> | undefined;

function split(token: string): TokenBytes {
  const lastDot = token.lastIndexOf(".");
  return {
    signingInput: encoder.encode(token.slice(0, lastDot)) as Uint8Array<ArrayBuffer>,
    signature: decodeBase64Url(token.slice(lastDot + 1)),
  };
}

/** Flips one signature character in the middle of the signature, so the copy stays canonical base64url. */
function tampered(token: string): string {
  const at = token.length - 20;
  return token.slice(0, at) + (token[at] === "A" ? "B" : "A") + token.slice(at + 1);
}

async function makeFixture(env: Bindings): Promise<Fixture> {
  const config = servicesOf(env).config;
  const ring = await servicesOf(env).keys.fixedRing();
  const subject = {
    memberEntityId: 2549,
    memberEntityIdentifier: "o6q2is",
    organisationEntityIdentifier: "m7l9hw",
    scope: "architect getGrids postGrids",
  };
  const now = () => Date.now();
  const { token } = await issueAccessToken(config, ring, subject, now());
  const bad = tampered(token);
  const fresh: string[] = [];
  for (let i = 0; i < FRESH_TOKENS; i++) fresh.push((await issueAccessToken(config, ring, subject, now())).token);
  return {
    good: { token, bytes: split(token) },
    fresh,
    bad: { token: bad, bytes: split(bad) },
    key: ring.current.key,
    secret: encoder.encode(config.jwtSecret) as Uint8Array<ArrayBuffer>,
  };
}

/** The gateway's complete check as `bearerAuth` runs it: config, key ring, format, signature, claims. */
async function gatewayVerify(env: Bindings, token: string): Promise<boolean> {
  const gateway = servicesOf(env);
  try {
    await gateway.verifier.verify(
      token,
      await gateway.keys.fixedRing(),
      gateway.claimRules(),
      undefined,
      NO_CONTEXT,
      gateway.logger,
    );
    return true;
  } catch (error) {
    if (error instanceof GatewayError) return false;
    throw error;
  }
}

/** Fixed-secret tokens never reach the background work an execution context is for. */
const NO_CONTEXT = { waitUntil: () => undefined };
let freshIndex = 0;

function variants(env: Bindings, f: Fixture): Record<string, Variant> {
  return {
    /** The same token on every call, as one client presents it for its whole lifetime. */
    gateway: (token) => gatewayVerify(env, token),
    /** A token never seen before on every call (the first request of each token). */
    "gateway-fresh": (token) =>
      gatewayVerify(env, token === f.bad.token ? token : f.fresh[freshIndex++ % f.fresh.length]!),
    /** The floor: one HMAC verify with a CryptoKey imported once, over bytes split outside the loop. */
    floor: (_token, bytes) => crypto.subtle.verify("HMAC", f.key, bytes.signature, bytes.signingInput),
    /** jose as most Workers code uses it: a Uint8Array secret (jose imports a key on every call). */
    jose: async (token) => {
      try {
        await jwtVerify(token, f.secret, { algorithms: ["HS256"], issuer: servicesOf(env).config.issuer });
        return true;
      } catch {
        return false;
      }
    },
    /** Reference: jose with a CryptoKey imported once. */
    "jose-key": async (token) => {
      try {
        await jwtVerify(token, f.key, { algorithms: ["HS256"], issuer: servicesOf(env).config.issuer });
        return true;
      } catch {
        return false;
      }
    },
  };
}

/**
 * The gateway's env with the network and storage replaced: a canned origin, a D1 that knows one active
 * organisation, and a KV without a revocation record (the authentication step reads its shards once per isolate, in
 * one bulk read).
 */
function inProcessEnv(env: Bindings): Bindings {
  // The plan gate's two queries (src/storage/organisation-feed.ts): one organisation's state, and the change feed
  // (here always empty), each with D1's clock.
  const rows = (query: string) =>
    query.includes("organisation_tombstones")
      ? [{ now: Date.now(), identifier: null, plan: null, status: null, changed_at: null, removed: null }]
      : [{ now: Date.now(), state: JSON.stringify(["professional", "active"]) }];
  const statementFor = (query: string) => {
    const statement = {
      bind: () => statement,
      raw: async () => rows(query).map((row) => Object.values(row)),
      all: async () => ({ results: rows(query), success: true, meta: {} }),
    };
    return statement;
  };
  // Builds the Request a real fetch() builds from its arguments (workerd always does), then answers.
  const origin = {
    fetch: async (input: RequestInfo, init?: RequestInit) => {
      void new Request(input, init);
      return Response.json({ grid: { id: 12, rows: 3, columns: 3 } });
    },
  };
  const kv = { get: async (key: string | string[]) => (Array.isArray(key) ? new Map() : null) };
  return {
    ...env,
    DB: { prepare: statementFor } as unknown as D1Database,
    TOKENS: kv as unknown as KVNamespace,
    ORIGIN: origin as unknown as Fetcher,
  };
}

/**
 * A stand-in for a rate-limiting binding: counts per key in fixed one-minute windows, as wrangler's local
 * simulation does, with a limit the bench never reaches. The production binding is a call into the runtime
 * (counters cached on the machine); its own cost cannot be measured outside Cloudflare.
 */
function countingLimiter(limit: number): RateLimit {
  let window = 0;
  const counts = new Map<string, number>();
  return {
    async limit({ key }: RateLimitOptions): Promise<RateLimitOutcome> {
      const now = Math.floor(Date.now() / 60_000);
      if (now !== window) {
        window = now;
        counts.clear();
      }
      const count = counts.get(key) ?? 0;
      if (count >= limit) return { success: false };
      counts.set(key, count + 1);
      return { success: true };
    },
  };
}

/** A stand-in dataset: keeps the last data point, as cheap as a write can be in JavaScript. */
function keepingDataset(): AnalyticsEngineDataset & { last?: AnalyticsEngineDataPoint } {
  const dataset = {
    last: undefined as AnalyticsEngineDataPoint | undefined,
    writeDataPoint(point?: AnalyticsEngineDataPoint) {
      dataset.last = point;
    },
  };
  return dataset;
}

/** The in-process envs: `bare` with the limit and metrics bindings unbound, `observed` with stand-ins bound. */
let appEnvs: { bare: Bindings; observed: Bindings } | undefined;
const appContext = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;

function makeAppEnvs(env: Bindings): { bare: Bindings; observed: Bindings } {
  const base = inProcessEnv(env);
  const bare = { ...base, API_LIMIT_PROFESSIONAL: undefined, API_LIMIT_ENTERPRISE: undefined, METRICS: undefined };
  const observed = {
    ...base,
    API_LIMIT_PROFESSIONAL: countingLimiter(1e12),
    API_LIMIT_ENTERPRISE: countingLimiter(1e12),
    METRICS: keepingDataset(),
  };
  return { bare, observed };
}

/** Runs the gateway app on one authorized GET; true when it answered 200. */
async function appRequest(env: Bindings, token: string): Promise<boolean> {
  const request = new Request("https://gateway.bench/grids/12/cells?range=A1:C3", {
    headers: { Authorization: `Bearer ${token}`, "Accept-Encoding": "identity" },
  });
  const response = await gateway.fetch(request, env, appContext);
  await response.arrayBuffer();
  return response.status === 200;
}

let observer: Services | undefined;
const observerLog = { info() {}, warn() {}, error() {} } as unknown as Services["logger"];

/**
 * Only what the limit step and the metrics write add to a proxied request: the binding call through
 * `OrganisationLimits.count`, the route kind, and one data point. True when the request was allowed.
 */
async function observeOnce(url: string, started: number): Promise<boolean> {
  observer ??= createServices(appEnvs!.observed);
  await observer.limits.count("professional", "m7l9hw", observerLog);
  observer.metrics.write({
    route: routeKind(pathOf(url)),
    status: 200,
    code: "",
    organisation: "m7l9hw",
    secretType: "fixed",
    durationMs: observer.now() - started,
  });
  return true;
}

/** A scope of a proxied 200 under a gateway whose sample rate is 0 and metrics unbound: every close is sampled out. */
let sampledOut: { scope: RequestScope; request: Request; response: Response } | undefined;

/**
 * One sampled-out 2xx as the access log sees it: `decision` is the sampling draw alone, `close` all of `closeScope`
 * for a proxied 200 (the `X-Request-Id` stamp, the refusal check, the draw), `stamp` what `closeScope` did before the
 * access log with METRICS unbound (the stamp). True when no line was wanted.
 */
function accessLogOnce(variant: string | null): boolean {
  if (!sampledOut) {
    const services = createServices({ ...appEnvs!.bare, ACCESS_LOG_SAMPLE_RATE: "0" });
    const request = new Request("https://gateway.bench/grids/12/cells?range=A1:C3");
    sampledOut = { scope: openScope(services, request), request, response: new Response("{}") };
  }
  const { scope, request, response } = sampledOut;
  if (variant === "decision") return !scope.services.accessLog.wanted(response.status >= 400);
  if (variant === "stamp") {
    response.headers.set("X-Request-Id", scope.requestId);
    return !scope.services.metrics.enabled;
  }
  closeScope(scope, request, response, undefined, undefined);
  return true;
}

/** The gateway's assertion signer for each `ASSERTION_ALG`, imported once. */
const signers = new Map<string, Promise<JwsSigner>>();
const SIGNED_FOR: AccessClaims = {
  memberEntityId: 2549,
  memberEntityIdentifier: "o6q2is",
  organisationEntityIdentifier: "m7l9hw",
  scope: "architect",
  secretType: "fixed",
  jti: "0f8a7c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b",
};

/** Signs `n` assertions with `alg` as `forward` does; answers how many were signed. */
async function signLoop(env: Bindings, alg: string, n: number): Promise<Response> {
  let signer = signers.get(alg);
  if (signer === undefined) {
    const services = createServices({ ...env, ASSERTION_ALG: alg });
    signer = services.keys.assertionKeys().then((keys) => keys.signer);
    signers.set(alg, signer);
  }
  const key = await signer;
  const config = { issuer: "gridgate" };
  const request = { method: "GET", path: "/grids/1", requestId: "9d3f6c2a-4b1e-4f7a-8c5d-2e6b0a1f3c4d" };
  let signed = 0;
  for (let i = 0; i < n; i++) {
    if ((await signAssertion(config, key, SIGNED_FOR, request, Math.floor(Date.now() / 1000))).length > 0) signed++;
  }
  return Response.json({ n, accepted: signed, alg: key.alg });
}

export default {
  async fetch(request: Request, env: Bindings): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/sign")
      return signLoop(env, url.searchParams.get("variant") ?? "", Number(url.searchParams.get("n") ?? "0"));
    fixture ??= makeFixture(env);
    const f = await fixture;
    if (url.pathname === "/token") return Response.json({ token: f.good.token, bytes: f.good.token.length });
    if (!["/verify", "/app", "/observe", "/access-log"].includes(url.pathname))
      return new Response("not found", { status: 404 });

    appEnvs ??= makeAppEnvs(env);
    const appEnv = url.searchParams.get("variant") === "observed" ? appEnvs.observed : appEnvs.bare;
    const started = Date.now();
    const variant =
      url.pathname === "/app"
        ? (token: string) => appRequest(appEnv, token)
        : url.pathname === "/observe"
          ? () => observeOnce(request.url, started)
          : url.pathname === "/access-log"
            ? async () => accessLogOnce(url.searchParams.get("variant"))
            : variants(env, f)[url.searchParams.get("variant") ?? ""];
    const n = Number(url.searchParams.get("n") ?? "0");
    if (!variant || !Number.isSafeInteger(n) || n < 0) return new Response("bad variant or n", { status: 400 });
    const { token, bytes } = url.searchParams.get("bad") === "1" ? f.bad : f.good;
    let accepted = 0;
    for (let i = 0; i < n; i++) if (await variant(token, bytes)) accepted++;
    return Response.json({ n, accepted });
  },
};
