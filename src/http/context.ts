/**
 * Gives every request its gateway, a gateway-generated id, its W3C trace and a logger carrying both; stamps
 * the id on every response and writes the request's one metrics data point.
 */
import type { MiddlewareHandler } from "hono";
import type { Bindings } from "../config";
import type { AppEnv, Gateway } from "../gateway";
import { GatewayError } from "../gateway-error";
import { routeKind } from "../metrics";
import { pathOf } from "./request-url";
import { traceContext } from "./trace";

/**
 * Sets `gateway`, `requestId`, `trace` and `log` (read them with `c.get`: `c.var` copies every variable on
 * each access), and after the handler ran (or a refusal was answered), the `X-Request-Id` response header
 * and one data point in the gateway's metrics.
 */
export function requestContext(gatewayFor: (env: Bindings) => Gateway): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const id = crypto.randomUUID();
    const gateway = gatewayFor(c.env);
    const started = gateway.now();
    const trace = traceContext(c.req.raw.headers.get("traceparent"));
    c.set("gateway", gateway);
    c.set("requestId", id);
    c.set("trace", trace);
    c.set("log", gateway.logger.child(id, trace.traceId));
    await next();
    c.res.headers.set("X-Request-Id", id);
    if (gateway.metrics.enabled) {
      const claims = c.get("claims");
      const error = c.error;
      gateway.metrics.write({
        route: routeKind(pathOf(c.req.url)),
        status: c.res.status,
        code: error === undefined ? "" : error instanceof GatewayError ? error.code : "internal",
        organisation: claims?.organisationEntityIdentifier ?? "",
        secretType: claims?.secretType ?? "",
        durationMs: gateway.now() - started,
      });
    }
  };
}
