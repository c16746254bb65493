// The audit queues' consumer: a batch becomes R2 objects (each ≤ 10 s of events, named newest first, summarised),
// every message acknowledged; when R2 fails nothing is acknowledged and every message is retried with back-off.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  consumeAuditBatch,
  FIRST_RETRY_DELAY_SECONDS,
  MAX_RETRY_DELAY_SECONDS,
  retryDelaySeconds,
} from "../src/audit/consumer";
import { AUDIT_PREFIX, MAX_OBJECT_SPAN_MS, summaryOf, type AuditRow } from "../src/audit/objects";
import { Logger } from "../src/log";
import { createWorker } from "../src/worker";
import { faultSwitch, faultyR2 } from "./fault-fakes";
import { storedAuditRows } from "./helpers";

afterEach(() => vi.restoreAllMocks());

function event(organisationId: number, at: number, n: number): AuditRow {
  return {
    id: crypto.randomUUID(),
    at,
    event: n % 2 ? "refresh.success" : "login.success",
    outcome: "success",
    member_id: 100 + n,
    organisation_id: organisationId,
    ip: null,
    user_agent: null,
    request_id: crypto.randomUUID(),
    trace_id: null,
    detail: null,
  };
}

function batchOf(rows: unknown[], attempts = 1): MessageBatch {
  return createMessageBatch(
    "gridgate-local-audit-0",
    rows.map((body, n) => ({ id: `m${n}`, timestamp: new Date(), attempts, body })),
  );
}

/** A batch recording what the consumer does with each message (the test runtime's result leaves out retry delays). */
function recordingBatch(rows: unknown[], attempts: number) {
  const calls: { id: string; call: "ack" | "retry"; delaySeconds?: number }[] = [];
  const messages = rows.map((body, n) => {
    const id = `m${n}`;
    return {
      id,
      timestamp: new Date(),
      attempts,
      body,
      ack: () => calls.push({ id, call: "ack" }),
      retry: (options?: QueueRetryOptions) => calls.push({ id, call: "retry", delaySeconds: options?.delaySeconds }),
    };
  });
  return { batch: { queue: "gridgate-local-audit-0", messages } as unknown as MessageBatch, calls };
}

/** The objects holding events of `organisationId`, as listed. */
async function objectsOf(organisationId: number): Promise<R2Object[]> {
  const { objects } = await env.AUDIT_BUCKET.list({ prefix: AUDIT_PREFIX, include: ["customMetadata"] });
  return objects.filter((object) => summaryOf(object)?.organisations?.has(organisationId));
}

const organisation = () => 800_000 + Math.floor(Math.random() * 100_000);

describe("the audit queues' consumer", () => {
  it("writes a batch as one object named by its newest event, summarised in its metadata, and acknowledges it", async () => {
    const org = organisation();
    const at = Date.now();
    const rows = [0, 1, 2].map((n) => event(org, at + n, n));
    const batch = batchOf(rows);
    const ctx = createExecutionContext();
    await createWorker().queue(batch, env);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks.sort()).toEqual(["m0", "m1", "m2"]);
    expect(result.retryMessages).toEqual([]);
    const [object, ...more] = await objectsOf(org);
    expect(more).toEqual([]);
    expect(summaryOf(object!)).toMatchObject({ minAt: at, maxAt: at + 2, members: new Set([100, 101, 102]) });
    expect(object!.customMetadata).toMatchObject({
      count: "3",
      organisations: String(org),
      events: "login.success,refresh.success",
    });
    expect((await storedAuditRows()).filter((row) => row.organisation_id === org)).toEqual(rows);
  });

  it(`splits a batch into objects of at most ${MAX_OBJECT_SPAN_MS / 1000} s of events each`, async () => {
    const org = organisation();
    const at = Date.now() - 60_000;
    const rows = [0, MAX_OBJECT_SPAN_MS, MAX_OBJECT_SPAN_MS + 1, 30_000].map((offset, n) => event(org, at + offset, n));
    await consumeAuditBatch(batchOf(rows), { bucket: env.AUDIT_BUCKET, logger: new Logger() });
    const spans = (await objectsOf(org)).map((object) => summaryOf(object)!).map(({ minAt, maxAt }) => [minAt, maxAt]);
    expect(spans).toEqual([
      [at + 30_000, at + 30_000],
      [at + MAX_OBJECT_SPAN_MS + 1, at + MAX_OBJECT_SPAN_MS + 1],
      [at, at + MAX_OBJECT_SPAN_MS],
    ]);
  });

  it.each(["throws", "hangs"] as const)(
    "R2 that %s: nothing acknowledged, every event retried with back-off, logged",
    async (fault) => {
      const errors = vi.spyOn(console, "error").mockImplementation(() => {});
      const org = organisation();
      const rows = [0, 1].map((n) => event(org, Date.now(), n));
      const batch = batchOf(rows, 3);
      const ctx = createExecutionContext();
      const bucket = faultyR2(faultSwitch(fault));
      await consumeAuditBatch(batch, { bucket, logger: new Logger(), waitMs: 200 });
      const result = await getQueueResult(batch, ctx);
      expect(result.explicitAcks).toEqual([]);
      expect(result.retryMessages.map((message) => message.msgId).sort()).toEqual(["m0", "m1"]);
      const delaySeconds = FIRST_RETRY_DELAY_SECONDS * 4;
      const recorded = recordingBatch(rows, 3);
      await consumeAuditBatch(recorded.batch, { bucket, logger: new Logger(), waitMs: 200 });
      expect(recorded.calls).toEqual([
        { id: "m0", call: "retry", delaySeconds },
        { id: "m1", call: "retry", delaySeconds },
      ]);
      expect(errors.mock.calls.map(([line]) => JSON.parse(String(line)))).toContainEqual(
        expect.objectContaining({
          event: "audit_store_failed",
          events: 2,
          attempts: 3,
          retry_in_seconds: delaySeconds,
        }),
      );
      expect(await objectsOf(org)).toEqual([]);
    },
  );

  it(`doubles the retry delay from ${FIRST_RETRY_DELAY_SECONDS} s up to ${MAX_RETRY_DELAY_SECONDS} s`, () => {
    expect([1, 2, 3, 7, 8, 100].map(retryDelaySeconds)).toEqual([30, 60, 120, 1920, 3600, 3600]);
  });

  it("acknowledges and logs a message that is not an event, and writes the others", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const org = organisation();
    const row = event(org, Date.now(), 0);
    const batch = batchOf([{ not: "an event" }, row]);
    const ctx = createExecutionContext();
    await consumeAuditBatch(batch, { bucket: env.AUDIT_BUCKET, logger: new Logger() });
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks.sort()).toEqual(["m0", "m1"]);
    expect(errors.mock.calls.map(([line]) => JSON.parse(String(line)))).toContainEqual(
      expect.objectContaining({ event: "audit_message_invalid", message_id: "m0" }),
    );
    expect((await storedAuditRows()).filter((stored) => stored.organisation_id === org)).toEqual([row]);
  });
});
