/** A request's scope, whichever way it comes in: its services, a gateway-made id, its W3C trace and logger; closed by stamping the id and writing one metrics data point. */
import { GatewayError } from "../gateway-error";
import type { Logger } from "../log";
import { routeKind } from "../metrics";
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
 * Stamps `X-Request-Id` on `response` and writes the request's metrics data point (`claims` once authentication
 * passed, `error` when the gateway answered a refusal or failure itself).
 */
export function closeScope(
  scope: RequestScope,
  url: string,
  response: Response,
  claims: AccessClaims | undefined,
  error: unknown,
): void {
  response.headers.set("X-Request-Id", scope.requestId);
  const { services } = scope;
  if (services.metrics.enabled) {
    services.metrics.write({
      route: routeKind(pathOf(url)),
      status: response.status,
      code: error === undefined ? "" : error instanceof GatewayError ? error.code : "internal",
      organisation: claims?.organisationEntityIdentifier ?? "",
      secretType: claims?.secretType ?? "",
      durationMs: services.now() - scope.started,
    });
  }
}
