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
  readonly started: number;
}

/** The scope of a request as it arrives. */
export function openScope(services: Services, request: Request): RequestScope {
  const random = crypto.getRandomValues(new Uint8Array(40));
  const requestId = uuidFrom(random.subarray(0, 16));
  const trace = traceContext(request.headers.get("traceparent"), random.subarray(16));
  return { services, requestId, trace, log: services.logger.child(requestId, trace.traceId), started: services.now() };
}

/** Stamps `X-Request-Id`, writes the metrics point and, if wanted, the access line; `error`: the gateway's refusal. */
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
