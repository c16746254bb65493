/** The Hono side of the gateway's own routes: their environment type, and the request scope, CORS, bearer authentication and error answers as middleware. */
import type { Context, ErrorHandler, MiddlewareHandler } from "hono";
import type { Bindings } from "../config";
import { allowedOrigin, preflightAnswer, withCorsHeaders } from "../http/cors";
import { markGatewayMade } from "../http/gateway-made";
import { errorResponse } from "../http/problem";
import { closeScope, openScope } from "../http/scope";
import type { TraceContext } from "../http/trace";
import { Logger } from "../log";
import type { Services } from "../services";
import { verifyBearer, type BearerAuthOptions } from "../http/bearer";
import type { AccessClaims } from "../tokens/claims";

interface Variables {
  services: Services;
  requestId: string;
  trace: TraceContext;
  log: Logger;
  /** The verified claims, once {@link bearerAuth} passed. */
  claims: AccessClaims;
}

/** The one Hono environment type of the gateway's routes. */
export type AppEnv = { Bindings: Bindings; Variables: Variables };

/** Opens the request's scope and closes it after the route (read it with `c.get`: `c.var` copies every variable). */
export function requestScope(servicesFor: (env: Bindings) => Services): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const scope = openScope(servicesFor(c.env), c.req.raw);
    c.set("services", scope.services);
    c.set("requestId", scope.requestId);
    c.set("trace", scope.trace);
    c.set("log", scope.log);
    await next();
    closeScope(scope, c.req.raw, c.res, c.get("claims"), c.error);
  };
}

/** The headers of every gateway-made response (src/http/gateway-made.ts), on every answer of the routes. */
export function gatewayMade(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await next();
    markGatewayMade(c.res.headers);
  };
}

/** CORS (src/http/cors.ts): a request without `Origin` passes untouched; a preflight is answered here. */
export function cors(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (!c.req.raw.headers.has("Origin")) return next();
    const settings = c.get("services").cors;
    const preflight = preflightAnswer(c.req.raw, settings);
    if (preflight) return preflight;
    await next();
    c.res = withCorsHeaders(c.req.raw, c.res, settings);
  };
}

/** The request's `Origin` when it is on `CORS_ORIGINS`. */
export function allowedOriginOf(c: Context<AppEnv>): string | undefined {
  return c.req.raw.headers.has("Origin") ? allowedOrigin(c.req.raw, c.get("services").cors) : undefined;
}

/** Bearer authentication of a route: sets `claims`. */
export function bearerAuth(options: BearerAuthOptions = {}): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const scope = {
      services: c.get("services"),
      log: c.get("log"),
      get ctx() {
        return c.executionCtx;
      },
    };
    c.set("claims", await verifyBearer(c.req.raw, scope, options));
    await next();
  };
}

/** Every error a route throws, as {@link errorResponse} answers it. */
export const onError: ErrorHandler<AppEnv> = (err, c) => {
  const requestId = c.get("requestId") ?? crypto.randomUUID();
  return errorResponse(err, requestId, c.get("log") ?? new Logger(requestId));
};
