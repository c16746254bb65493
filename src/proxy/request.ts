/** A proxied API request in flight, and the shape of the steps that decide it. */
import type { Bindings, WaitUntil } from "../config";
import type { RequestScope } from "../http/scope";
import type { TraceContext } from "../http/trace";
import type { Logger } from "../log";
import type { Services } from "../services";
import type { AccessClaims } from "../tokens/claims";

/** What every step reads, and what the steps before it set: the claims (authentication), the plan (plan gate). */
export class ProxiedRequest {
  readonly services: Services;
  readonly requestId: string;
  readonly log: Logger;
  readonly trace: TraceContext;
  claims: AccessClaims | undefined = undefined;
  /** Set by the plan step: the organisation's plan, which picks its API limit. */
  plan: string | undefined = undefined;

  constructor(
    readonly request: Request,
    readonly env: Bindings,
    private readonly context: WaitUntil | undefined,
    scope: RequestScope,
  ) {
    this.services = scope.services;
    this.requestId = scope.requestId;
    this.log = scope.log;
    this.trace = scope.trace;
  }

  /** The execution context; only background work needs it. */
  get ctx(): WaitUntil {
    if (this.context === undefined) throw new Error("This context has no ExecutionContext");
    return this.context;
  }

  /** The claims the authentication step set (a step placed before it is a programming error). */
  get verifiedClaims(): AccessClaims {
    if (this.claims === undefined) throw new Error("a proxy step ran before the request was authenticated");
    return this.claims;
  }
}

/** One check: returns to let the request on, throws a `GatewayError` to refuse it; no promise when it needs no I/O. */
export type ProxyStep = (request: ProxiedRequest) => Promise<void> | void;
