/** Gives every request its gateway, a gateway-generated id and a logger carrying it; stamps the id on every response. */
import type { MiddlewareHandler } from "hono";
import type { Bindings } from "../config";
import type { AppEnv, Gateway } from "../gateway";

/**
 * Sets `gateway`, `requestId` and `log` (read them with `c.get`: `c.var` copies every variable on
 * each access), and after the handler ran, the `X-Request-Id` response header.
 */
export function requestContext(gatewayFor: (env: Bindings) => Gateway): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const id = crypto.randomUUID();
    const gateway = gatewayFor(c.env);
    c.set("gateway", gateway);
    c.set("requestId", id);
    c.set("log", gateway.logger.child(id));
    await next();
    c.res.headers.set("X-Request-Id", id);
  };
}
