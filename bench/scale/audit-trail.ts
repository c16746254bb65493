// The audit trail's part of the capacity model (docs/capacity.md § 5): what the events measured at one isolate cost the
// queues, R2 and the fallback buffer at the target, against the platform's published limits.
import { AUDIT_SHARDS } from "../../src/audit/sink";

/** Cloudflare Queues: messages a second per queue; past it `send` throws (docs/capacity.md § 2). */
const QUEUE_MESSAGES_PER_SECOND = 5000;
/** Cloudflare Queues: backlog per queue; past it `send` throws. 1 GB = 10^9 bytes. */
const QUEUE_BACKLOG_BYTES = 25e9;
/** Messages per consumer batch (wrangler.toml `max_batch_size`): one R2 object per batch once batches fill. */
const CONSUMER_BATCH = 100;
/** Durable Objects: soft limit of requests a second per object. */
const DURABLE_OBJECT_SOFT_LIMIT = 1000;

/** Events measured per queue (messages/s at the target) and their average size as sent (bytes). */
export interface AuditTrailLoad {
  perQueue: number[];
  eventBytes: number;
}

/** The trail's figures at the target, and how many times the target its first limit (a queue's rate) allows. */
export function auditTrailFigures({ perQueue, eventBytes }: AuditTrailLoad) {
  const events = perQueue.reduce((a, b) => a + b, 0);
  const busiest = Math.max(...perQueue);
  return {
    events,
    busiest,
    headroom: QUEUE_MESSAGES_PER_SECOND / Math.max(busiest, 1e-9),
    objectsPerSecond: events / CONSUMER_BATCH,
    gigabytesPerDay: (events * eventBytes * 86_400) / 1e9,
    backlogHours: QUEUE_BACKLOG_BYTES / Math.max(busiest * eventBytes, 1e-9) / 3600,
    /** While the queues refuse: requests a second to each AuditSink shard (on average), and its headroom. */
    fallbackPerShard: events / AUDIT_SHARDS,
    fallbackHeadroom: (DURABLE_OBJECT_SOFT_LIMIT * AUDIT_SHARDS) / Math.max(events, 1e-9),
  };
}

/** The report's lines for the trail. */
export function auditTrailReport(load: AuditTrailLoad): string[] {
  const figures = auditTrailFigures(load);
  const fmt = (value: number, digits = 1) => value.toLocaleString("en-GB", { maximumFractionDigits: digits });
  return [
    `Audit trail (at the target): ${fmt(figures.events, 0)} events/s to ${load.perQueue.length} queues ` +
      `(${load.perQueue.map((rate) => fmt(rate, 0)).join(" + ")} messages/s; ${fmt(QUEUE_MESSAGES_PER_SECOND)} each at most: ` +
      `${fmt(figures.headroom)}× the target), ${fmt(load.eventBytes, 0)} B an event`,
    `  R2: ≈ ${fmt(figures.objectsPerSecond)} objects/s written (batches of ${CONSUMER_BATCH}), ` +
      `≈ ${fmt(figures.gigabytesPerDay)} GB a day; an R2 outage fills the busiest queue's ${QUEUE_BACKLOG_BYTES / 1e9} GB ` +
      `backlog in ≈ ${fmt(figures.backlogHours)} h`,
    `  while the queues refuse: ≈ ${fmt(figures.fallbackPerShard, 0)} requests/s to each of ${AUDIT_SHARDS} AuditSink ` +
      `shards (${fmt(DURABLE_OBJECT_SOFT_LIMIT)} at most: ${fmt(figures.fallbackHeadroom)}× the target)`,
  ];
}
