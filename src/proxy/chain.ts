/**
 * The proxied API's chain as named steps over one plain per-request object, run in the order `src/app.ts`
 * lists: by one Hono handler, or for plain API calls without the router at all ({@link withPlainProxiedCalls}).
 */
import type { Handler, Hono } from "hono";
import type { Bindings, WaitUntil } from "../config";
import type { AppEnv, Gateway } from "../gateway";
import { finishRequest, startRequest, type RequestStart } from "../http/context";
import { errorResponse } from "../http/problem";
import { pathOf } from "../http/request-url";
import type { TraceContext } from "../http/trace";
import type { Logger } from "../log";
import type { AccessClaims } from "../tokens/claims";

/** A proxied request in flight: what every step reads, and the claims the authentication step sets. */
export interface ProxiedRequest {
  readonly request: Request;
  readonly env: Bindings;
  readonly gateway: Gateway;
  readonly requestId: string;
  readonly log: Logger;
  /** The request's W3C trace, forwarded to the origin. */
  readonly trace: TraceContext;
  /** The execution context (read lazily: only background refreshes need it). */
  readonly ctx: WaitUntil;
  /** Set by the authentication step; every later step may rely on it. */
  claims: AccessClaims | undefined;
  /** Set by the plan step: the organisation's plan, which picks its API limit. */
  plan: string | undefined;
}

/**
 * One check of the chain: returns normally to let the request on, throws a `GatewayError` to refuse it. A step
 * that can decide without I/O returns nothing rather than a promise: the chain then does not wait a turn for it.
 */
export type ProxyStep = (request: ProxiedRequest) => Promise<void> | void;

/** The claims the authentication step set (a step placed before it is a programming error). */
export function claimsOf(request: ProxiedRequest): AccessClaims {
  if (request.claims === undefined) throw new Error("a proxy step ran before the request was authenticated");
  return request.claims;
}

/** A request's whole way through the proxied API: the named steps in order, then the call to the origin. */
export type ProxyChain = (proxied: ProxiedRequest) => Promise<Response>;

/** The chain running `steps` in order, then `final` (which talks to the origin). */
export function proxyChain(
  steps: readonly ProxyStep[],
  final: (request: ProxiedRequest) => Promise<Response>,
): ProxyChain {
  return async (proxied) => {
    for (const step of steps) {
      const pending = step(proxied);
      if (pending !== undefined) await pending;
    }
    return final(proxied);
  };
}

/** The execution context, or Hono's error for a request served without one. */
function executionContext(ctx: WaitUntil | undefined): WaitUntil {
  if (ctx === undefined) throw new Error("This context has no ExecutionContext");
  return ctx;
}

/** {@link ProxiedRequest} as a class: one shape for every request, the `ctx` accessor on the prototype. */
class ProxiedCall implements ProxiedRequest {
  readonly gateway: Gateway;
  readonly requestId: string;
  readonly log: Logger;
  readonly trace: TraceContext;
  claims: AccessClaims | undefined = undefined;
  plan: string | undefined = undefined;

  constructor(
    readonly request: Request,
    readonly env: Bindings,
    start: Pick<ProxiedRequest, "gateway" | "requestId" | "log" | "trace">,
    private readonly ctxOf: () => WaitUntil,
  ) {
    this.gateway = start.gateway;
    this.requestId = start.requestId;
    this.log = start.log;
    this.trace = start.trace;
  }

  get ctx(): WaitUntil {
    return this.ctxOf();
  }
}

/** The request in flight, before authentication; `ctx` is read lazily (only background refreshes need it). */
export function proxiedRequest(
  request: Request,
  env: Bindings,
  start: Pick<ProxiedRequest, "gateway" | "requestId" | "log" | "trace">,
  ctx: () => WaitUntil,
): ProxiedRequest {
  return new ProxiedCall(request, env, start, ctx);
}

/** `chain` as the Hono handler of the proxied route (for the requests {@link withPlainProxiedCalls} leaves to the router). */
export function proxyRoute(chain: ProxyChain): Handler<AppEnv> {
  return async (c) => {
    const proxied = proxiedRequest(
      c.req.raw,
      c.env,
      { gateway: c.get("gateway"), requestId: c.get("requestId"), log: c.get("log"), trace: c.get("trace") },
      () => c.executionCtx,
    );
    try {
      return await chain(proxied);
    } finally {
      if (proxied.claims !== undefined) c.set("claims", proxied.claims);
    }
  };
}

/**
 * Serves a proxied request without Hono's router and per-request `Context`: the same request context
 * (`startRequest`/`finishRequest`), the same chain and the same error answers as the Hono route.
 */
async function serveProxied(
  chain: ProxyChain,
  start: RequestStart,
  request: Request,
  env: Bindings,
  ctx: WaitUntil | undefined,
): Promise<Response> {
  const proxied = proxiedRequest(request, env, start, () => executionContext(ctx));
  let response: Response;
  let error: unknown;
  try {
    response = await chain(proxied);
  } catch (caught) {
    error = caught;
    response = errorResponse(caught, start.requestId, start.log);
  }
  finishRequest(start, request.url, response, proxied.claims, error);
  return response;
}

/** The shape of the app's `fetch`. */
export type FetchHandler = Hono<AppEnv>["fetch"];

/**
 * An `app.fetch` that serves the requests `bypassesRouter` picks with `chain` directly and hands every other
 * request to `routed` (Hono), as well as any request whose context cannot even be set up (a gateway that
 * fails to build answers there exactly as it always did).
 */
export function withPlainProxiedCalls(
  routed: FetchHandler,
  bypassesRouter: (request: Request) => boolean,
  chain: ProxyChain,
  gatewayFor: (env: Bindings) => Gateway,
): FetchHandler {
  return (request, env, ctx) => {
    if (!bypassesRouter(request)) return routed(request, env, ctx);
    let start: RequestStart;
    try {
      start = startRequest(gatewayFor(env as Bindings), request);
    } catch {
      return routed(request, env, ctx);
    }
    return serveProxied(chain, start, request, env as Bindings, ctx);
  };
}

/**
 * Which requests certainly end on the proxied route (`*`) with nothing for the middleware to do, given the
 * paths of the gateway's own routes (`app.routes`): not a `HEAD` (Hono routes it as `GET` and drops the body),
 * no `Origin` (CORS touches only requests with one), no `%` in the path (the router matches the decoded path)
 * and no segment, in any case, that begins like the first segment of a gateway route (`/authenticate…`,
 * `/health…`, `/openapi.json…`): deliberately wider than the routes. A route whose first segment is not a
 * literal turns the bypass off.
 */
export function plainProxiedCalls(routePaths: readonly string[]): (request: Request) => boolean {
  const firstSegments = new Set<string>();
  for (const path of routePaths) {
    if (path === "*" || path === "/*") continue;
    const first = path.split("/")[1] ?? "";
    if (first === "" || /[:*{}()?]/.test(first)) return () => false;
    firstSegments.add(first.toLowerCase().replace(/[.+^$|[\]\\]/g, "\\$&"));
  }
  const gatewayRoute = new RegExp(`%|/(?:${[...firstSegments].join("|")})`, "i");
  return (request) =>
    request.method !== "HEAD" && !request.headers.has("Origin") && !gatewayRoute.test(pathOf(request.url));
}
