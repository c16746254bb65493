/** The audit queues: which producer bindings carry the trail's events (wrangler.toml `[[queues.producers]]`). */
import type { Bindings } from "../config";

/** The queues an event may go to, by its request id's hash; each needs a consumer and a dead-letter queue. */
export const AUDIT_QUEUE_BINDINGS = ["AUDIT_QUEUE_0", "AUDIT_QUEUE_1"] as const;

/** The audit queues of `env`, in {@link AUDIT_QUEUE_BINDINGS} order. */
export function auditQueues(env: Bindings): Queue[] {
  return AUDIT_QUEUE_BINDINGS.map((name) => env[name]);
}
