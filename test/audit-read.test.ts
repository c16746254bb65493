// The audit trail's reader over R2: newest first across objects written in any order, each event once however often
// it was delivered, only the objects whose metadata may match read, and pages that end early resume without a gap.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { writeAuditObjects, type AuditRow } from "../src/audit/objects";
import { MAX_OBJECT_READS, readAuditEvents, type AuditPosition, type AuditQuery } from "../src/audit/read";
import { database } from "../src/storage/db";

const db = database(env.DB);

function event(organisationId: number, at: number, memberId: number | null = null): AuditRow {
  return {
    id: crypto.randomUUID(),
    at,
    event: "login.success",
    outcome: "success",
    member_id: memberId,
    organisation_id: organisationId,
    ip: null,
    user_agent: null,
    request_id: crypto.randomUUID(),
    trace_id: null,
    detail: null,
  };
}

/** The R2 bucket counting the objects read. */
function countingBucket(): { bucket: R2Bucket; reads: string[] } {
  const reads: string[] = [];
  const bucket = new Proxy(env.AUDIT_BUCKET, {
    get(target, property) {
      if (property === "get")
        return (key: string) => {
          reads.push(key);
          return target.get(key);
        };
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { bucket, reads };
}

/** Every page of `query` (each of at most `limit`), followed through `next` to the end. */
async function allPages(query: AuditQuery, bucket = env.AUDIT_BUCKET) {
  const pages: { ids: string[]; next: AuditPosition | null }[] = [];
  let before: AuditPosition | undefined;
  do {
    const page = await readAuditEvents({ bucket, db }, { ...query, before });
    pages.push({ ids: page.events.map((found) => found.id), next: page.next });
    before = page.next ?? undefined;
  } while (before);
  return pages;
}

const newestFirst = (rows: AuditRow[]) => [...rows].sort((a, b) => b.at - a.at || (a.id < b.id ? 1 : -1));
const organisation = () => 700_000 + Math.floor(Math.random() * 100_000);

describe("the audit trail's reader", () => {
  it("answers newest first across objects written in any order, an event delivered twice once", async () => {
    const org = organisation();
    const at = Date.now() - 3_600_000;
    const early = [0, 1, 2].map((n) => event(org, at + n * 1000));
    const late = [3, 4].map((n) => event(org, at + n * 1000));
    await writeAuditObjects(env.AUDIT_BUCKET, late);
    // Written after, older: a batch retried while R2 was down. And a redelivered copy of one event.
    await writeAuditObjects(env.AUDIT_BUCKET, early);
    await writeAuditObjects(env.AUDIT_BUCKET, [early[1]!, late[0]!]);
    const page = await readAuditEvents({ bucket: env.AUDIT_BUCKET, db }, { organisationId: org, limit: 10 });
    expect(page.events.map((found) => found.id)).toEqual(newestFirst([...early, ...late]).map((row) => row.id));
    expect(page.next).toBeNull();
    expect(page.events[0]).toMatchObject({ organisation_id: org, organisation: null, member: null, detail: null });
  });

  it("reads only the objects whose metadata may hold a match", async () => {
    const org = organisation();
    const other = organisation();
    const at = Date.now() - 3_000_000;
    for (let n = 0; n < 5; n++) await writeAuditObjects(env.AUDIT_BUCKET, [event(other, at + n * 20_000, 1)]);
    const mine = event(org, at + 50_000, 2);
    await writeAuditObjects(env.AUDIT_BUCKET, [mine]);
    const { bucket, reads } = countingBucket();
    const page = await readAuditEvents({ bucket, db }, { organisationId: org, memberId: 2, limit: 10 });
    expect(page.events.map((found) => found.id)).toEqual([mine.id]);
    expect(reads).toHaveLength(1);
  });

  it(`ends a page after ${MAX_OBJECT_READS} objects with a next that resumes without a gap or a repeat`, async () => {
    const org = organisation();
    const at = Date.now() - 2_000_000;
    // One object per event, 20 s apart: a page reads 100 of them, then stops before the next.
    const rows = Array.from({ length: MAX_OBJECT_READS + 30 }, (_, n) => event(org, at + n * 20_000));
    for (const row of rows) await writeAuditObjects(env.AUDIT_BUCKET, [row]);
    const pages = await allPages({ organisationId: org, limit: 500 });
    expect(pages.map((page) => page.ids.length)).toEqual([MAX_OBJECT_READS, 30]);
    expect(pages[0]!.next).toEqual({ at: rows[29]!.at + 1, id: "" });
    expect(pages.flatMap((page) => page.ids)).toEqual(newestFirst(rows).map((row) => row.id));
  });

  it("pages by the last event's position, including events of the same instant and in wide objects", async () => {
    const org = organisation();
    const at = Date.now() - 1_000_000;
    // One object spanning 9 s, a newer one at its newest instant, and three events sharing an instant.
    const wide = [event(org, at), event(org, at + 4000), event(org, at + 4000), event(org, at + 9000)];
    await writeAuditObjects(env.AUDIT_BUCKET, wide);
    const newer = [event(org, at + 9000), event(org, at + 9500)];
    await writeAuditObjects(env.AUDIT_BUCKET, newer);
    const pages = await allPages({ organisationId: org, limit: 2 });
    expect(pages.flatMap((page) => page.ids)).toEqual(newestFirst([...wide, ...newer]).map((row) => row.id));
    expect(pages.map((page) => page.ids.length)).toEqual([2, 2, 2, 0]);
  });

  it("stops at since: older objects are not read", async () => {
    const org = organisation();
    const at = Date.now() - 500_000;
    const rows = [0, 1, 2, 3].map((n) => event(org, at + n * 60_000));
    for (const row of rows) await writeAuditObjects(env.AUDIT_BUCKET, [row]);
    const { bucket, reads } = countingBucket();
    const page = await readAuditEvents({ bucket, db }, { organisationId: org, since: rows[2]!.at, limit: 10 });
    expect(page.events.map((found) => found.id)).toEqual([rows[3]!.id, rows[2]!.id]);
    expect(page.next).toBeNull();
    expect(reads).toHaveLength(2);
  });
});
