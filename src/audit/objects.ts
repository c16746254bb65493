/** The audit trail's store: R2 objects of newline-delimited JSON events, keyed newest first, summarised in metadata. */
import { withinDeadline } from "../deadline";

/** One stored event, one line of an audit object (already clipped and redacted). */
export interface AuditRow {
  /** A UUIDv7, unique per event: delivery is at least once, so a reader drops a second copy by this id. */
  id: string;
  /** Milliseconds since the epoch. */
  at: number;
  event: string;
  outcome: "success" | "failure";
  member_id: number | null;
  organisation_id: number | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string;
  trace_id: string | null;
  /** A JSON object's text, at most `MAX_DETAIL` characters. */
  detail: string | null;
}

/** Where the events live in the bucket. */
export const AUDIT_PREFIX = "events/";
/** Milliseconds between an object's oldest and newest event, at most: a read resumes this far before its cursor. */
export const MAX_OBJECT_SPAN_MS = 10_000;
const STORE_WAIT_MS = 30_000;
/** Characters of one metadata list (organisations, members, events); a longer one is stored as `*` (any). */
const MAX_LIST_CHARS = 2000;
const LAST_KEY_TIME = 10 ** 13 - 1;

/** Where a batch of events is written: R2, or a test's fake. */
export interface AuditStore {
  write(rows: AuditRow[]): Promise<void>;
  /** Whether the store answers at all: tells a batch it refuses from it refusing everything. */
  answers(): Promise<boolean>;
}

/** What an object's metadata says of its events; a `null` set means it may hold any value. */
export interface AuditObjectSummary {
  key: string;
  minAt: number;
  maxAt: number;
  organisations: ReadonlySet<number> | null;
  members: ReadonlySet<number> | null;
  events: ReadonlySet<string> | null;
}

/** 13 digits that sort in the opposite order of `at`: ascending keys list the newest objects first. */
function keyTime(at: number): string {
  return String(LAST_KEY_TIME - Math.min(Math.max(at, 0), LAST_KEY_TIME)).padStart(13, "0");
}

/** The listing position after which every object that may hold an event at or before `at` comes. */
export function listingStartFor(at: number): string {
  return `${AUDIT_PREFIX}${keyTime(at + MAX_OBJECT_SPAN_MS)}`;
}

/** `rows` ordered oldest first, by time then id (the reader's order reversed). */
export function byPosition(a: Pick<AuditRow, "at" | "id">, b: Pick<AuditRow, "at" | "id">): number {
  return a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function list(values: Iterable<string | number>): string {
  const text = [...new Set(values)].join(",");
  return text.length > MAX_LIST_CHARS ? "*" : text;
}

/** Runs of `sorted` rows each spanning at most {@link MAX_OBJECT_SPAN_MS}. */
function spans(sorted: AuditRow[]): AuditRow[][] {
  const runs: AuditRow[][] = [];
  for (const row of sorted) {
    const run = runs.at(-1);
    if (run && row.at - run[0]!.at <= MAX_OBJECT_SPAN_MS) run.push(row);
    else runs.push([row]);
  }
  return runs;
}

/** Writes `rows` as one object per run of at most {@link MAX_OBJECT_SPAN_MS}; throws when any write fails or times out. */
export async function writeAuditObjects(bucket: R2Bucket, rows: AuditRow[], waitMs = STORE_WAIT_MS): Promise<void> {
  const runs = spans([...rows].sort(byPosition));
  await withinDeadline(
    () =>
      Promise.all(
        runs.map((run) => {
          const first = run[0]!;
          const last = run.at(-1)!;
          const present = (values: (number | null)[]) => values.filter((value): value is number => value !== null);
          return bucket.put(
            `${AUDIT_PREFIX}${keyTime(last.at)}-${crypto.randomUUID()}.ndjson`,
            run.map((row) => `${JSON.stringify(row)}\n`).join(""),
            {
              httpMetadata: { contentType: "application/x-ndjson" },
              customMetadata: {
                min_at: String(first.at),
                max_at: String(last.at),
                count: String(run.length),
                organisations: list(present(run.map((row) => row.organisation_id))),
                members: list(present(run.map((row) => row.member_id))),
                events: list(run.map((row) => row.event)),
              },
            },
          );
        }),
      ),
    waitMs,
  );
}

/** The R2 bucket as an {@link AuditStore}. */
export function r2AuditStore(bucket: R2Bucket): AuditStore {
  return {
    write: (rows) => writeAuditObjects(bucket, rows),
    answers: async () => {
      try {
        await withinDeadline(() => bucket.head(AUDIT_PREFIX), STORE_WAIT_MS);
        return true;
      } catch {
        return false;
      }
    },
  };
}

function numbers(text: string | undefined): ReadonlySet<number> | null {
  if (text === undefined || text === "*") return null;
  return new Set(text === "" ? [] : text.split(",").map(Number));
}

/** The summary of a listed object (without readable metadata: anything within its key's span); undefined for a foreign key. */
export function summaryOf(object: R2Object): AuditObjectSummary | undefined {
  const time = object.key.slice(AUDIT_PREFIX.length, AUDIT_PREFIX.length + 13);
  if (!/^\d{13}$/.test(time)) return undefined;
  const maxAt = LAST_KEY_TIME - Number(time);
  const meta = object.customMetadata ?? {};
  const minAt = Number(meta.min_at);
  return {
    key: object.key,
    maxAt,
    minAt: Number.isSafeInteger(minAt) && minAt <= maxAt ? minAt : maxAt - MAX_OBJECT_SPAN_MS,
    organisations: numbers(meta.organisations),
    members: numbers(meta.members),
    events: meta.events === undefined || meta.events === "*" ? null : new Set(meta.events.split(",")),
  };
}

function isAuditRow(value: unknown): value is AuditRow {
  const row = value as Partial<AuditRow> | null;
  return (
    typeof row === "object" &&
    row !== null &&
    typeof row.id === "string" &&
    Number.isSafeInteger(row.at) &&
    typeof row.event === "string" &&
    (row.outcome === "success" || row.outcome === "failure") &&
    typeof row.request_id === "string"
  );
}

/** The events of one stored object; a line that is not an event is skipped. */
export function parseAuditObject(text: string): AuditRow[] {
  const rows: AuditRow[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    try {
      const row: unknown = JSON.parse(line);
      if (isAuditRow(row)) rows.push(row);
    } catch {
      // A torn or foreign line: the others still count.
    }
  }
  return rows;
}

/** A queue message's body when it is an event, else undefined. */
export function auditRowOf(body: unknown): AuditRow | undefined {
  return isAuditRow(body) ? body : undefined;
}
