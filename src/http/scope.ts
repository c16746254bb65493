/** A request's scope, whichever way it comes in: its services, a gateway-made id, its W3C trace and logger; closed by stamping the id, writing one metrics data point and, when wanted, one access log line. */
import { GatewayError } from "../gateway-error";
import type { Logger } from "../log";
import { routeKind, type RouteKind } from "../metrics";
import type { Services } from "../services";
import type { AccessClaims } from "../tokens/claims";
import { pathOf } from "./request-url";
import { traceContext, uuidFrom, type TraceContext } from "./trace";

/** What a request carries from its arrival to its response. */
export interface RequestScope {
  readonly services: Services;
  readonly requestId: string;
  readonly trace: TraceContext;
  readonly log: Logger;
  /** `services.now()` at arrival, for the metrics' duration. */
  readonly started: number;
}

/** The scope of a request as it arrives. */
export function openScope(services: Services, request: Request): RequestScope {
  // one draw from the CSPRNG for both: 16 bytes of request id, 24 of trace and span id
  const random = crypto.getRandomValues(new Uint8Array(40));
  const requestId = uuidFrom(random.subarray(0, 16));
  const trace = traceContext(request.headers.get("traceparent"), random.subarray(16));
  return { services, requestId, trace, log: services.logger.child(requestId, trace.traceId), started: services.now() };
}

/**
 * Stamps `X-Request-Id` on `response`, writes the request's metrics data point (`claims` once authentication passed,
 * `error` when the gateway answered a refusal or failure itself) and, when wanted, its access log line: every
 * refusal or failure of the gateway's own (any answer with `error`, any 4xx/5xx of its own routes), every 5xx,
 * and a sample of the rest.
 */
export function closeScope(
  scope: RequestScope,
  request: Request,
  response: Response,
  claims: AccessClaims | undefined,
  error: unknown,
): void {
  response.headers.set("X-Request-Id", scope.requestId);
  const { services } = scope;
  const status = response.status;
  let route: RouteKind | undefined;
  const kind = () => (route ??= routeKind(pathOf(request.url)));
  const code = error === undefined ? "" : error instanceof GatewayError ? error.code : "internal";
  if (services.metrics.enabled) {
    services.metrics.write({
      route: kind(),
      status,
      code,
      organisation: claims?.organisationEntityIdentifier ?? "",
      secretType: claims?.secretType ?? "",
      durationMs: services.now() - scope.started,
    });
  }
  const refused = error !== undefined || status >= 500 || (status >= 400 && kind() !== "proxied");
  if (!services.accessLog.wanted(refused)) return;
  services.accessLog.write(
    scope.log,
    {
      method: request.method,
      route: kind(),
      status,
      code: code || undefined,
      organisation: claims?.organisationEntityIdentifier,
      member: claims?.memberEntityIdentifier,
      durationMs: services.now() - scope.started,
      colo: typeof request.cf?.colo === "string" ? request.cf.colo : undefined,
    },
    !refused,
  );
}
