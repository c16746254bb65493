/** The one way into the proxied API: the request's scope, CORS, the steps in order, then the origin. */
import type { Bindings } from "../config";
import { preflightAnswer, withCorsHeaders } from "../http/cors";
import { errorResponse } from "../http/problem";
import { closeScope, openScope, type RequestScope } from "../http/scope";
import { Logger } from "../log";
import type { Services } from "../services";
import { forward } from "./forward";
import { ProxiedRequest } from "./request";
import { PROXY_STEPS } from "./steps";

async function decide(proxied: ProxiedRequest): Promise<Response> {
  for (const step of PROXY_STEPS) {
    const pending = step(proxied);
    if (pending !== undefined) await pending;
  }
  return forward(proxied);
}

/** Serves one proxied request; with an `Origin`, a preflight is answered here and every answer gets CORS headers. */
export async function serveProxied(
  request: Request,
  env: Bindings,
  ctx: ExecutionContext | undefined,
  services: (env: Bindings) => Services,
): Promise<Response> {
  let scope: RequestScope;
  try {
    scope = openScope(services(env), request);
  } catch (error) {
    const requestId = crypto.randomUUID();
    return errorResponse(error, requestId, new Logger(requestId));
  }
  const proxied = new ProxiedRequest(request, env, ctx, scope);
  let response: Response;
  let error: unknown;
  try {
    const cors = request.headers.has("Origin") ? scope.services.cors : undefined;
    const preflight = cors && preflightAnswer(request, cors);
    if (preflight) response = preflight;
    else {
      try {
        response = await decide(proxied);
      } catch (refused) {
        error = refused;
        response = errorResponse(refused, scope.requestId, scope.log);
      }
      if (cors) response = withCorsHeaders(request, response, cors);
    }
  } catch (refused) {
    error = refused;
    response = errorResponse(refused, scope.requestId, scope.log);
  }
  if (request.method === "HEAD" && response.body !== null) response = new Response(null, response);
  closeScope(scope, request, response, proxied.claims, error);
  return response;
}
