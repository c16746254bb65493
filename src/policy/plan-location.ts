/** The plan gate's copy at this Cloudflare location (Cache API): the recent organisation changes and each organisation's last D1 read. */
import { withinDeadline } from "../deadline";
import type { Logger } from "../log";
import type { OrganisationState } from "../storage/organisation-feed";

/** One organisation change: identifier, plan and status after it (null: no such organisation), D1 time (ms). */
export type LocationChange = [identifier: string, plan: string | null, status: string | null, changedAt: number];

/** The change feed as read at this location: every change with `changedAt` ≥ `since` up to D1 time `now`. */
export interface FeedWindow {
  v: 1;
  since: number;
  now: number;
  /** Gateway time the D1 read behind `now` was sent. */
  sentAt: number;
  changes: LocationChange[];
}

/** An organisation's state as a D1 read at this location found it. */
export interface LocationState {
  v: 1;
  state: OrganisationState;
  /** D1 time (ms) the state was current at. */
  asOf: number;
  /** Gateway time the D1 read was sent. */
  readAt: number;
}

/** Longest a Cache API call may take before it counts as a miss (ms): it answers from this data centre. */
const LOCATION_WAIT_MS = 250;
/** Cache entries outlive their use: a state is installable while the window reaches back to it (≤ 75 min). */
const ENTRY_MAX_AGE_SECONDS = 7200;
/** Path under the gateway's own host (the Cache API keys by URL; the docs advise the Worker's hostname). */
const KEY_PATH = "/.gridgate/plan";

const isState = (value: unknown): value is OrganisationState => {
  const state = value as OrganisationState;
  const optionalString = (field: unknown) => field === undefined || typeof field === "string";
  return typeof value === "object" && value !== null && optionalString(state.plan) && optionalString(state.status);
};

function parseWindow(raw: unknown): FeedWindow | undefined {
  const window = raw as FeedWindow;
  if (typeof raw !== "object" || raw === null || window.v !== 1) return undefined;
  const times = [window.since, window.now, window.sentAt];
  if (!times.every(Number.isFinite) || !Array.isArray(window.changes)) return undefined;
  const valid = window.changes.every(
    (change) =>
      Array.isArray(change) &&
      typeof change[0] === "string" &&
      (change[1] === null || typeof change[1] === "string") &&
      (change[2] === null || typeof change[2] === "string") &&
      Number.isFinite(change[3]),
  );
  return valid ? window : undefined;
}

function parseState(raw: unknown): LocationState | undefined {
  const entry = raw as LocationState;
  if (typeof raw !== "object" || raw === null || entry.v !== 1 || !isState(entry.state)) return undefined;
  return Number.isFinite(entry.asOf) && Number.isFinite(entry.readAt) ? entry : undefined;
}

/** What a {@link PlanLocationCopy} works with. */
export interface PlanLocationCopyDeps {
  /** This location's cache (`caches.default`); undefined where there is none. */
  cache: Cache | undefined;
  logger: Logger;
  /** Longest wait for one call (default {@link LOCATION_WAIT_MS}). */
  waitMs?: number;
}

/**
 * The copy shared by the gateway's isolates at this location. Only a cache: a call that throws, hangs or answers
 * something unreadable is a miss (logged once per episode), and the plan gate asks D1 instead.
 */
export class PlanLocationCopy {
  private origin: string | undefined;
  /** Whether reads, and writes, are failing now (each episode is logged once). */
  private readonly failing = { match: false, put: false };

  constructor(private readonly deps: PlanLocationCopyDeps) {}

  /** The gateway's origin, which the cache keys use; nothing is read or written before one is known. */
  useOrigin(origin: string): void {
    this.origin ??= origin;
  }

  /** The location's feed window, or undefined. */
  readWindow(): Promise<FeedWindow | undefined> {
    return this.read("feed", parseWindow);
  }

  /** Replaces the location's feed window (best effort). */
  writeWindow(window: FeedWindow): Promise<void> {
    return this.write("feed", window);
  }

  /** The location's last read of an organisation, or undefined. */
  readState(identifier: string): Promise<LocationState | undefined> {
    return this.read(`organisation/${encodeURIComponent(identifier)}`, parseState);
  }

  /** Records a D1 read of an organisation for the location (best effort). */
  writeState(identifier: string, entry: Omit<LocationState, "v">): Promise<void> {
    return this.write(`organisation/${encodeURIComponent(identifier)}`, { v: 1, ...entry });
  }

  private key(name: string): string | undefined {
    return this.origin && `${this.origin}${KEY_PATH}/${name}`;
  }

  private async read<T>(name: string, parse: (raw: unknown) => T | undefined): Promise<T | undefined> {
    const { cache } = this.deps;
    const key = this.key(name);
    if (!cache || !key) return undefined;
    try {
      const raw = await withinDeadline(async () => {
        const response = await cache.match(key);
        return response ? { body: (await response.json()) as unknown } : undefined;
      }, this.deps.waitMs ?? LOCATION_WAIT_MS);
      const value = raw && parse(raw.body);
      if (raw && value === undefined) throw new Error(`unreadable ${name}`);
      this.failing.match = false;
      return value;
    } catch (error) {
      this.failed("match", error);
      return undefined;
    }
  }

  private async write(name: string, value: unknown): Promise<void> {
    const { cache } = this.deps;
    const key = this.key(name);
    if (!cache || !key) return;
    const response = new Response(JSON.stringify(value), {
      headers: { "Content-Type": "application/json", "Cache-Control": `max-age=${ENTRY_MAX_AGE_SECONDS}` },
    });
    try {
      await withinDeadline(() => cache.put(key, response), this.deps.waitMs ?? LOCATION_WAIT_MS);
      this.failing.put = false;
    } catch (error) {
      this.failed("put", error);
    }
  }

  private failed(call: "match" | "put", error: unknown): void {
    if (this.failing[call]) return;
    this.failing[call] = true;
    const message = error instanceof Error ? error.message : String(error);
    this.deps.logger.warn("plan_location_copy_failed", { call, error: message });
  }
}
