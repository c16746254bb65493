/** Request metrics: one Workers Analytics Engine data point per request, written without waiting for it. */
import type { Logger } from "./log";

/** Which part of the gateway answered. */
export type RouteKind = "login" | "refresh" | "revoke" | "secrets" | "admin" | "proxied" | "other";

/** The route kind of a request path (still percent-encoded, as the router saw it). */
export function routeKind(path: string): RouteKind {
  if (!path.startsWith("/authenticate"))
    return path === "/health" || path === "/openapi.json" || path.startsWith("/.well-known/") ? "other" : "proxied";
  if (path === "/authenticate") return "login";
  if (path === "/authenticate/refresh") return "refresh";
  if (path === "/authenticate/revoke") return "revoke";
  if (path === "/authenticate/secrets" || path.startsWith("/authenticate/secrets/")) return "secrets";
  if (path.startsWith("/authenticate/admin/")) return "admin";
  return path.startsWith("/authenticate/") ? "other" : "proxied";
}

/** One request as the metrics record it; strings are empty where the request had no such value. */
export interface RequestMetric {
  route: RouteKind;
  status: number;
  code: string;
  organisation: string;
  secretType: string;
  /** Milliseconds from the request's arrival to its response headers, as the Worker's clock sees it. */
  durationMs: number;
}

/** Where {@link Metrics} write, and where their failures are logged. */
export interface MetricsDeps {
  dataset: AnalyticsEngineDataset | undefined;
  logger: Logger;
}

/** Writes data points to the `METRICS` dataset, a no-op when it is unbound (layout: docs/operating.md § Metrics). */
export class Metrics {
  private failureLogged = false;

  constructor(private readonly deps: MetricsDeps) {}

  get enabled(): boolean {
    return this.deps.dataset !== undefined;
  }

  /** Records `metric`; `writeDataPoint` returns at once (the runtime sends it after the response). Never throws. */
  write(metric: RequestMetric): void {
    if (this.deps.dataset === undefined) return;
    try {
      this.deps.dataset.writeDataPoint({
        indexes: [metric.organisation],
        blobs: [metric.route, metric.code, metric.organisation, metric.secretType],
        doubles: [metric.status, metric.durationMs],
      });
    } catch (error) {
      if (!this.failureLogged) this.deps.logger.error("metrics_write_failed", { error: String(error) });
      this.failureLogged = true;
    }
  }
}
