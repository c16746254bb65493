// The audit trail's part of the capacity model (docs/capacity.md § 8): what the events measured at one isolate cost the
// queues, R2 and the fallback buffer at the run's scale, against the platform's published limits (§ 2).
import { AUDIT_SHARDS } from "../../src/audit/sink";

/** Cloudflare Queues: messages a second per queue; past it `send` throws. */
const QUEUE_MESSAGES_PER_SECOND = 5000;
/** Cloudflare Queues: backlog per queue; past it `send` throws. 1 GB = 10^9 bytes. */
const QUEUE_BACKLOG_BYTES = 25e9;
/** Messages per consumer batch (wrangler.toml `max_batch_size`): one R2 object per batch once batches fill. */
const CONSUMER_BATCH = 100;
/** Durable Objects: soft limit of requests a second per object. */
const DURABLE_OBJECT_SOFT_LIMIT = 1000;

/**
 * Events per queue (messages/s at the run's scale, as sampled here), their average size as sent (bytes), and the run's
 * scale. Request ids are random, so at the target's hundreds of events a second the queues share them evenly; the
 * sample's split (a few dozen events) is only reported.
 */
export interface AuditTrailLoad {
  perQueue: number[];
  eventBytes: number;
  /** How many times the target the run stands for. */
  times: number;
}

/** The trail's figures at the run's scale, and how many times the target each limit allows. */
export function auditTrailFigures({ perQueue, eventBytes, times }: AuditTrailLoad) {
  const events = perQueue.reduce((a, b) => a + b, 0);
  const busiest = events / perQueue.length;
  return {
    events,
    busiest,
    headroom: (times * QUEUE_MESSAGES_PER_SECOND) / Math.max(busiest, 1e-9),
    objectsPerSecond: events / CONSUMER_BATCH,
    gigabytesPerDay: (events * eventBytes * 86_400) / 1e9,
    backlogHours: QUEUE_BACKLOG_BYTES / Math.max(busiest * eventBytes, 1e-9) / 3600,
    /** While the queues refuse: requests a second to each AuditSink shard (on average), and its headroom. */
    fallbackPerShard: events / AUDIT_SHARDS,
    fallbackHeadroom: (times * DURABLE_OBJECT_SOFT_LIMIT * AUDIT_SHARDS) / Math.max(events, 1e-9),
  };
}

/** The report's lines for the trail. */
export function auditTrailReport(load: AuditTrailLoad): string[] {
  const figures = auditTrailFigures(load);
  const fmt = (value: number, digits = 1) => value.toLocaleString("en-GB", { maximumFractionDigits: digits });
  return [
    `audit trail: ${fmt(figures.events, 0)} events/s to ${load.perQueue.length} queues, ${fmt(figures.busiest, 0)} ` +
      `messages/s each (the sample's split ${load.perQueue.map((rate) => fmt(rate, 0)).join(" + ")}; ` +
      `${fmt(QUEUE_MESSAGES_PER_SECOND)} each at most: ${fmt(figures.headroom)}× the target), ` +
      `${fmt(load.eventBytes, 0)} B an event; no D1`,
    `  R2: ≈ ${fmt(figures.objectsPerSecond)} objects/s written (batches of ${CONSUMER_BATCH}, each a new key), ` +
      `≈ ${fmt(figures.gigabytesPerDay)} GB a day; an R2 outage fills each queue's ${QUEUE_BACKLOG_BYTES / 1e9} GB ` +
      `backlog in ≈ ${fmt(figures.backlogHours)} h`,
    `  while the queues refuse: ≈ ${fmt(figures.fallbackPerShard, 0)} requests/s to each of ${AUDIT_SHARDS} AuditSink ` +
      `shards (${fmt(DURABLE_OBJECT_SOFT_LIMIT)} at most: ${fmt(figures.fallbackHeadroom)}× the target)`,
  ];
}
