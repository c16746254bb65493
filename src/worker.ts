/** The Worker: each kind of request has one way in, the gateway's own routes (a Hono app) or the proxied API. */
import { consumeAuditBatch } from "./audit/consumer";
import type { Bindings } from "./config";
import { pathOf } from "./http/request-url";
import { serveProxied } from "./proxy/serve";
import { createRoutes } from "./routes/app";
import { servicesOf, type Services } from "./services";

/** How {@link createWorker} finds a request's services. */
export interface WorkerOptions {
  /** Default: one per `env` object ({@link servicesOf}); tests return services built with fakes. */
  servicesFor?: (env: Bindings) => Services;
}

/** The first path segments the gateway owns, as they read decoded and lower-cased; `true` for the segment's subtree. */
const GATEWAY_PATHS = new Map<string, boolean>([
  ["health", false],
  ["openapi.json", false],
  ["authenticate", true],
  [".well-known", true],
]);

/** True when a request belongs to the gateway's own routes (`GATEWAY_PATHS`) in any case and percent-encoding. */
export function isGatewayRoute(url: string): boolean {
  const path = pathOf(url);
  const end = path.indexOf("/", 1);
  let first: string;
  try {
    first = decodeURIComponent(path.slice(1, end === -1 ? undefined : end)).toLowerCase();
  } catch {
    return false;
  }
  const subtree = GATEWAY_PATHS.get(first);
  return subtree !== undefined && (subtree || end === -1);
}

/** The Worker's handlers: requests, and the batches of the audit queues. */
export interface Worker {
  fetch(request: Request, env: Bindings, ctx?: ExecutionContext): Response | Promise<Response>;
  queue(batch: MessageBatch, env: Bindings): Promise<void>;
}

/** The Worker's handler, its routes built once. */
export function createWorker(options: WorkerOptions = {}): Worker {
  const servicesFor = options.servicesFor ?? servicesOf;
  const routes = createRoutes(servicesFor);
  return {
    fetch(request, env, ctx) {
      return isGatewayRoute(request.url)
        ? routes.fetch(request, env, ctx)
        : serveProxied(request, env, ctx, servicesFor);
    },
    queue(batch, env) {
      return consumeAuditBatch(batch, { bucket: env.AUDIT_BUCKET, logger: servicesFor(env).logger });
    },
  };
}
