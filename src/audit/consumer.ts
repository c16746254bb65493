/** The audit queues' consumer: each batch of events becomes R2 objects; a batch R2 does not take is retried later. */
import type { Logger } from "../log";
import { auditRowOf, writeAuditObjects, type AuditRow } from "./objects";

/** The first retry's delay (s); each further one doubles it, up to {@link MAX_RETRY_DELAY_SECONDS}. */
export const FIRST_RETRY_DELAY_SECONDS = 30;
/** The longest delay between two tries of a batch (s). */
export const MAX_RETRY_DELAY_SECONDS = 3600;

/** Seconds to wait before the next try of a message that failed `attempts` times. */
export function retryDelaySeconds(attempts: number): number {
  return Math.min(MAX_RETRY_DELAY_SECONDS, FIRST_RETRY_DELAY_SECONDS * 2 ** Math.max(0, attempts - 1));
}

/** What {@link consumeAuditBatch} writes to and logs through. */
export interface AuditConsumerDeps {
  bucket: R2Bucket;
  logger: Logger;
  /** Longest wait for a batch's objects (ms; default `STORE_WAIT_MS`). */
  waitMs?: number;
}

/** Writes `batch`'s events to R2 and acks them (all retried when R2 fails); a message that is no event is logged, acked. */
export async function consumeAuditBatch(batch: MessageBatch, deps: AuditConsumerDeps): Promise<void> {
  const events: { message: Message; row: AuditRow }[] = [];
  for (const message of batch.messages) {
    const row = auditRowOf(message.body);
    if (row) events.push({ message, row });
    else {
      deps.logger.error("audit_message_invalid", { queue: batch.queue, message_id: message.id });
      message.ack();
    }
  }
  if (events.length === 0) return;
  try {
    await writeAuditObjects(
      deps.bucket,
      events.map((event) => event.row),
      deps.waitMs,
    );
    for (const { message } of events) message.ack();
  } catch (error) {
    const attempts = Math.max(...events.map(({ message }) => message.attempts));
    const delaySeconds = retryDelaySeconds(attempts);
    deps.logger.error("audit_store_failed", {
      queue: batch.queue,
      events: events.length,
      attempts,
      retry_in_seconds: delaySeconds,
      error: String(error),
    });
    for (const { message } of events) message.retry({ delaySeconds });
  }
}
