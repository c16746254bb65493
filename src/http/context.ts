/**
 * Gives every request its gateway, a gateway-generated id, its W3C trace and a logger carrying both; stamps
 * the id on every response and writes the request's one metrics data point.
 */
import type { MiddlewareHandler } from "hono";
import type { Bindings } from "../config";
import type { AppEnv, Gateway } from "../gateway";
import { GatewayError } from "../gateway-error";
import type { Logger } from "../log";
import { routeKind } from "../metrics";
import type { AccessClaims } from "../tokens/claims";
import { pathOf } from "./request-url";
import { traceContext, uuidFrom, type TraceContext } from "./trace";

/** What a request carries from its arrival to its response, whichever way it is dispatched. */
export interface RequestStart {
  readonly gateway: Gateway;
  readonly requestId: string;
  readonly trace: TraceContext;
  readonly log: Logger;
  /** `gateway.now()` at arrival, for the metrics' duration. */
  readonly started: number;
}

/** The request id, trace and logger of a request as it arrives. */
export function startRequest(gateway: Gateway, request: Request): RequestStart {
  // one draw from the CSPRNG for both: 16 bytes of request id, 24 of trace and span id
  const random = crypto.getRandomValues(new Uint8Array(40));
  const requestId = uuidFrom(random.subarray(0, 16));
  const trace = traceContext(request.headers.get("traceparent"), random.subarray(16));
  return { gateway, requestId, trace, log: gateway.logger.child(requestId, trace.traceId), started: gateway.now() };
}

/**
 * Stamps `X-Request-Id` on `response` and writes the request's metrics data point (`claims` once authentication
 * passed, `error` when the gateway answered a refusal or failure itself).
 */
export function finishRequest(
  start: RequestStart,
  url: string,
  response: Response,
  claims: AccessClaims | undefined,
  error: unknown,
): void {
  response.headers.set("X-Request-Id", start.requestId);
  const { gateway } = start;
  if (gateway.metrics.enabled) {
    gateway.metrics.write({
      route: routeKind(pathOf(url)),
      status: response.status,
      code: error === undefined ? "" : error instanceof GatewayError ? error.code : "internal",
      organisation: claims?.organisationEntityIdentifier ?? "",
      secretType: claims?.secretType ?? "",
      durationMs: gateway.now() - start.started,
    });
  }
}

/**
 * Sets `gateway`, `requestId`, `trace` and `log` (read them with `c.get`: `c.var` copies every variable on
 * each access), and after the handler ran (or a refusal was answered), the `X-Request-Id` response header
 * and one data point in the gateway's metrics.
 */
export function requestContext(gatewayFor: (env: Bindings) => Gateway): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const start = startRequest(gatewayFor(c.env), c.req.raw);
    c.set("gateway", start.gateway);
    c.set("requestId", start.requestId);
    c.set("trace", start.trace);
    c.set("log", start.log);
    await next();
    finishRequest(start, c.req.url, c.res, c.get("claims"), c.error);
  };
}
