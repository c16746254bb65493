/**
 * The proxied API's chain as named steps over one plain per-request object: one Hono handler runs
 * them in the order `src/app.ts` lists, instead of one Hono middleware (and one `next()`) per step.
 */
import type { Handler } from "hono";
import type { Bindings, WaitUntil } from "../config";
import type { AppEnv, Gateway } from "../gateway";
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

/** One check of the chain: returns normally to let the request on, throws a `GatewayError` to refuse it. */
export type ProxyStep = (request: ProxiedRequest) => Promise<void> | void;

/** The claims the authentication step set (a step placed before it is a programming error). */
export function claimsOf(request: ProxiedRequest): AccessClaims {
  if (request.claims === undefined) throw new Error("a proxy step ran before the request was authenticated");
  return request.claims;
}

/** The Hono handler running `steps` in order, then `final` (which talks to the origin). */
export function proxyChain(
  steps: readonly ProxyStep[],
  final: (request: ProxiedRequest) => Promise<Response>,
): Handler<AppEnv> {
  return async (c) => {
    const proxied: ProxiedRequest = {
      request: c.req.raw,
      env: c.env,
      gateway: c.get("gateway"),
      requestId: c.get("requestId"),
      log: c.get("log"),
      trace: c.get("trace"),
      get ctx() {
        return c.executionCtx;
      },
      claims: undefined,
      plan: undefined,
    };
    try {
      for (const step of steps) await step(proxied);
      return await final(proxied);
    } finally {
      if (proxied.claims !== undefined) c.set("claims", proxied.claims);
    }
  };
}
