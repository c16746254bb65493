/** The one way a route records an audit event: the request's facts plus the event's fields. */
import type { Context } from "hono";
import { requestFacts, type AuditFields } from "../audit/trail";
import type { AppEnv } from "./middleware";

/** Records `fields` for the request of `c` (id, trace id, IP, user agent) in the gateway's audit trail. */
export function auditRequest(c: Context<AppEnv>, fields: AuditFields): void {
  c.get("services").audit.record(c.executionCtx, {
    ...fields,
    ...requestFacts(c.req.raw, c.get("requestId"), c.get("trace").traceId),
  });
}
