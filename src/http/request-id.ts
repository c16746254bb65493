/** Gives every request a gateway-generated id and stamps it on every response. */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../config";

/** Sets `requestId` and, after the handler ran, the `X-Request-Id` response header. */
export function requestId(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const id = crypto.randomUUID();
    c.set("requestId", id);
    await next();
    c.res.headers.set("X-Request-Id", id);
  };
}
