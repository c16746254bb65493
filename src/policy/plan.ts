/** The plan gate: only active organisations on an API plan pass; state cached per isolate ≤ 60 s stale, kept fresh by one change feed. */
import { LruCache } from "../cache/lru";
import { ConfigError, type ConfigSource, type WaitUntil } from "../config";
import { GatewayError, refusal, unavailable } from "../gateway-error";
import type { Logger } from "../log";
import type { Database } from "../storage/db";
import {
  readOrganisationFeed,
  readOrganisationState,
  readOrganisationStates,
  type OrganisationChange,
  type OrganisationState,
} from "../storage/organisation-feed";
import { isEligible } from "./eligibility";
import type { FeedWindow, LocationChange, PlanLocationCopy } from "./plan-location";

/** A state is served only while the D1 read that vouches for it is younger than this. */
const PLAN_STALENESS_MS = 60_000;
/** When D1 fails, the last known state is still served for this long past {@link PLAN_STALENESS_MS}; then 503. */
const PLAN_FAILURE_GRACE_MS = 300_000;
const POLL_INTERVAL_MS = 25_000;
/** Each poll re-reads this much of the feed before its cursor, for commits stamped just before the last read. */
const FEED_OVERLAP_MS = 10_000;
const FEED_PAGE_LIMIT = 500;
/** Past this many pages in one poll (or a full page stamped in one millisecond) the feed stops vouching for any state. */
const FEED_PAGES_PER_POLL = 4;
const RETRY_AFTER_FAILURE_MS = 5_000;
/** A cached state is re-read from D1 this long after its read whatever the feed says (the access-token TTL). */
const ENTRY_MAX_AGE_MS = 3_600_000;
const RE_READ_DUE_MS = 55 * 60_000;
const RE_READ_FROM_MS = 45 * 60_000;
const RE_READ_BATCH = 500;
/** The location's feed window: this far back (past {@link ENTRY_MAX_AGE_MS}), at most this many changes. */
const WINDOW_MS = 75 * 60_000;
const WINDOW_CHANGES = 4_000;
const CACHE_LIMIT = 10_000;
/** A D1 read that has not answered after this long counts as failed. */
const PLAN_D1_TIMEOUT_MS = 5_000;

interface KnownOrganisation {
  state: OrganisationState;
  /** D1 time (ms) the state was current at. */
  asOf: number;
  /** Gateway time (ms) the D1 read behind it was sent; the entry's own staleness is measured from it. */
  readAt: number;
}

/** What a {@link PlanGate} reads. */
export interface PlanGateDeps {
  source: ConfigSource;
  /** The primary: the gate compares D1's clock with what it reads. */
  db: Database;
  location?: PlanLocationCopy;
  now: () => number;
  logger: Logger;
  d1TimeoutMs?: number;
}

/**
 * Plan and status of organisations, cached per isolate and kept fresh by polling one change feed; shared per
 * location through {@link PlanLocationCopy}. A request awaits only D1 reads it sent itself (CONTRIBUTING.md § add
 * a cache). Why: docs/security.md § The plan gate, docs/capacity.md § 4.
 */
export class PlanGate {
  private readonly cache = new LruCache<string, KnownOrganisation>({ maxEntries: CACHE_LIMIT });
  /** D1 time the next poll reads changes from (minus the overlap); undefined until the first read. */
  private cursor: number | undefined;
  /** D1 time since which the polls saw every change: states read before it are vouched for only by their own read. */
  private coveredSince = Infinity;
  /** The latest change of each organisation since {@link recentSince}. */
  private recent = new Map<string, OrganisationChange>();
  private recentSince = Infinity;
  // Gateway times: the last successful poll; the running poll and re-read; the last failed read and its episode.
  private syncedAt = -Infinity;
  private pollingSince: number | undefined;
  private reReadingSince: number | undefined;
  private failedAt: number | undefined;
  private lastFailure: unknown;
  private failingSince: number | undefined;

  constructor(private readonly deps: PlanGateDeps) {}

  /** The plan of an active organisation on an API plan; else 403 `plan_not_eligible`, or 503 when D1 cannot answer. */
  async requireEligible(ctx: WaitUntil, identifier: string, url: string): Promise<string> {
    try {
      this.deps.location?.useOrigin(new URL(url).origin);
      return this.eligiblePlan(this.freshlyKnown(ctx, identifier) ?? (await this.known(ctx, identifier)));
    } catch (error) {
      throw gateFailure(error);
    }
  }

  /** {@link requireEligible} answered without waiting from a fresh state; undefined when only D1 can tell. */
  eligiblePlanNow(ctx: WaitUntil, identifier: string): string | undefined {
    try {
      const known = this.freshlyKnown(ctx, identifier);
      return known && this.eligiblePlan(known);
    } catch (error) {
      throw gateFailure(error);
    }
  }

  private eligiblePlan({ state }: KnownOrganisation): string {
    if (!isEligible(this.deps.source.config, state)) throw refusal("planNotEligible");
    return state.plan!;
  }

  /** The cached state while it is fresh (starting a background poll when due), else undefined. */
  private freshlyKnown(ctx: WaitUntil, identifier: string): KnownOrganisation | undefined {
    const cached = this.cache.get(identifier);
    if (!cached || !this.isFresh(cached)) return undefined;
    if (this.deps.now() - this.syncedAt >= POLL_INTERVAL_MS) this.pollInBackground(ctx);
    return cached;
  }

  private async known(ctx: WaitUntil, identifier: string): Promise<KnownOrganisation> {
    try {
      if (this.cursor === undefined) await this.startFromLocation();
      let cached = this.cache.get(identifier);
      if (!cached || !this.feedVouchesFor(cached)) cached = (await this.fromLocation(identifier)) ?? cached;
      if (cached && this.isFresh(cached)) return cached;
      if (cached && this.feedVouchesFor(cached) && !this.pollRunning()) {
        if (this.retryNotYetDue()) throw this.lastFailure;
        await this.poll(ctx);
        const synced = this.cache.get(identifier);
        if (synced && this.isFresh(synced)) return synced;
      }
      return await this.read(ctx, identifier);
    } catch (error) {
      const lastKnown = this.cache.get(identifier);
      if (lastKnown && this.deps.now() - this.freshAt(lastKnown) < PLAN_STALENESS_MS + PLAN_FAILURE_GRACE_MS) {
        return lastKnown;
      }
      throw unavailable("d1", error);
    }
  }

  /** Whether every change since the entry's read has reached the isolate through the feed. */
  private feedCovers(entry: KnownOrganisation): boolean {
    return entry.asOf >= this.coveredSince;
  }

  /** Whether the feed covers the entry and its own read is younger than the safety net. */
  private feedVouchesFor(entry: KnownOrganisation): boolean {
    return this.feedCovers(entry) && this.deps.now() - entry.readAt < ENTRY_MAX_AGE_MS;
  }

  /** Gateway time the entry was last known current: its read, or the last poll covering it. */
  private freshAt(entry: KnownOrganisation): number {
    return this.feedCovers(entry) ? Math.max(entry.readAt, this.syncedAt) : entry.readAt;
  }

  private isFresh(entry: KnownOrganisation): boolean {
    const now = this.deps.now();
    return now - this.freshAt(entry) < PLAN_STALENESS_MS && now - entry.readAt < ENTRY_MAX_AGE_MS;
  }

  /** A new isolate takes up the location's feed window while it is fresh. */
  private async startFromLocation(): Promise<void> {
    const window = await this.deps.location?.readWindow();
    const age = window && this.deps.now() - window.sentAt;
    if (!window || this.cursor !== undefined || age === undefined || age < 0 || age >= PLAN_STALENESS_MS) return;
    this.cursor = window.now;
    this.coveredSince = window.since;
    this.recentSince = window.since;
    this.syncedAt = window.sentAt;
    this.remember(window.changes.map(changeOf));
  }

  /** The location's last read of an organisation plus the changes since, cached; undefined when not vouched for. */
  private async fromLocation(identifier: string): Promise<KnownOrganisation | undefined> {
    if (!this.deps.location || this.cursor === undefined) return undefined;
    const read = await this.deps.location.readState(identifier);
    if (!read || read.asOf - FEED_OVERLAP_MS < this.recentSince || read.asOf < this.coveredSince) return undefined;
    if (read.readAt > this.deps.now()) return undefined;
    const current = this.cache.get(identifier);
    if (current && current.asOf >= read.asOf && current.readAt >= read.readAt) return current;
    const change = this.recent.get(identifier);
    const later = change !== undefined && change.changedAt >= read.asOf - FEED_OVERLAP_MS;
    const entry = {
      state: later ? change.state : read.state,
      asOf: later ? Math.max(read.asOf, change.changedAt) : read.asOf,
      readAt: read.readAt,
    };
    this.cache.set(identifier, entry);
    return entry;
  }

  /** Reads one organisation from D1 and caches it (unless a newer state arrived meanwhile), for the location too. */
  private async read(ctx: WaitUntil, identifier: string): Promise<KnownOrganisation> {
    const readAt = this.deps.now();
    const { state, asOf } = await this.withFailures(() => readOrganisationState(this.deps.db, identifier));
    if (this.cursor === undefined) {
      this.cursor = asOf;
      this.coveredSince = asOf;
      this.recentSince = asOf;
      this.syncedAt = readAt;
    }
    const current = this.cache.get(identifier);
    if (current && current.asOf > asOf) return current;
    const entry = { state, asOf, readAt };
    this.cache.set(identifier, entry);
    if (this.deps.location) ctx.waitUntil(this.deps.location.writeState(identifier, entry));
    return entry;
  }

  private pollInBackground(ctx: WaitUntil): void {
    if (this.pollRunning() || this.retryNotYetDue()) return;
    ctx.waitUntil(
      this.poll(ctx)
        .then(() => this.reReadDue(ctx))
        .catch(() => {}),
    );
  }

  /** Whether a poll is running; one lost with its request stops counting after one D1 time-out per page. */
  private pollRunning(): boolean {
    return this.pollingSince !== undefined && this.deps.now() - this.pollingSince < this.pollDeadlineMs();
  }

  private pollDeadlineMs(): number {
    return FEED_PAGES_PER_POLL * (this.deps.d1TimeoutMs ?? PLAN_D1_TIMEOUT_MS);
  }

  private retryNotYetDue(): boolean {
    return this.failedAt !== undefined && this.deps.now() - this.failedAt < RETRY_AFTER_FAILURE_MS;
  }

  /** One poll: from the location's window when another isolate read a newer one reaching the cursor, else from D1. */
  private async poll(ctx: WaitUntil): Promise<void> {
    const cursor = this.cursor;
    if (cursor === undefined) return;
    const sentAt = (this.pollingSince = this.deps.now());
    try {
      const window = await this.deps.location?.readWindow();
      const newer = window && window.sentAt > this.syncedAt && window.sentAt <= sentAt;
      if (newer && window.since <= cursor - FEED_OVERLAP_MS) {
        const since = cursor - FEED_OVERLAP_MS;
        this.applyPage(window.changes.filter((change) => change[3] >= since).map(changeOf), window.now);
        this.syncedAt = Math.max(this.syncedAt, window.sentAt);
        return;
      }
      await this.readFeed(ctx, cursor, sentAt, window);
    } finally {
      if (this.pollingSince === sentAt) this.pollingSince = undefined;
    }
  }

  private async readFeed(ctx: WaitUntil, cursor: number, sentAt: number, window?: FeedWindow): Promise<void> {
    const changes: OrganisationChange[] = [];
    const from = cursor - FEED_OVERLAP_MS;
    let since = from;
    for (let pages = 1; ; pages++) {
      const page = await this.withFailures(() => readOrganisationFeed(this.deps.db, since, FEED_PAGE_LIMIT));
      if (page.changes.length < FEED_PAGE_LIMIT) {
        const all = [...changes, ...page.changes];
        this.applyPage(all, page.now);
        const shared = nextWindow(window, from, all, page.now, sentAt);
        if (this.deps.location) ctx.waitUntil(this.deps.location.writeWindow(shared));
        break;
      }
      const last = page.changes[page.changes.length - 1]!.changedAt;
      if (pages === FEED_PAGES_PER_POLL || page.changes[0]!.changedAt === last) {
        this.coveredSince = Math.max(this.coveredSince, page.now);
        this.recentSince = Math.max(this.recentSince, page.now);
        this.cursor = Math.max(this.cursor ?? cursor, page.now);
        this.deps.logger.warn("plan_feed_overflow", { pages, since });
        break;
      }
      changes.push(...page.changes.filter((change) => change.changedAt < last));
      since = last;
    }
    this.syncedAt = Math.max(this.syncedAt, sentAt);
  }

  private applyPage(changes: OrganisationChange[], now: number): void {
    this.apply(changes, now);
    this.remember(changes);
    this.cursor = Math.max(this.cursor ?? now, now);
  }

  /** Applies the changes since the cursor to the organisations held: each is then current as of D1 time `now`. */
  private apply(changes: OrganisationChange[], now: number): void {
    for (const change of changes) {
      const entry = this.cache.get(change.identifier);
      if (entry && entry.asOf <= now) entry.state = change.state;
    }
    for (const change of changes) {
      const entry = this.cache.get(change.identifier);
      if (entry && entry.asOf < now) entry.asOf = now;
    }
  }

  /** Keeps the latest change of each organisation for the window's span. */
  private remember(changes: OrganisationChange[]): void {
    for (const change of changes) {
      const known = this.recent.get(change.identifier);
      if (!known || known.changedAt <= change.changedAt) {
        this.recent.delete(change.identifier);
        this.recent.set(change.identifier, change);
      }
    }
    const oldest = (this.cursor ?? 0) - WINDOW_MS;
    for (const [identifier, change] of this.recent) {
      if (change.changedAt >= oldest && this.recent.size <= WINDOW_CHANGES) break;
      this.recent.delete(identifier);
      this.recentSince = Math.max(this.recentSince, change.changedAt + 1, oldest);
    }
  }

  /** Once a state is {@link RE_READ_DUE_MS} old, re-reads in one query every state older than {@link RE_READ_FROM_MS}. */
  private async reReadDue(ctx: WaitUntil): Promise<void> {
    const now = this.deps.now();
    if (this.reReadingSince !== undefined && now - this.reReadingSince < this.pollDeadlineMs()) return;
    let due = false;
    const identifiers: string[] = [];
    for (const [identifier, entry] of this.cache.peekAll()) {
      const age = now - entry.readAt;
      if (age >= RE_READ_DUE_MS) due = true;
      if (age >= RE_READ_FROM_MS && identifiers.length < RE_READ_BATCH) identifiers.push(identifier);
    }
    if (!due) return;
    const sentAt = (this.reReadingSince = now);
    try {
      const { states, asOf } = await this.withFailures(() => readOrganisationStates(this.deps.db, identifiers));
      for (const [identifier, state] of states) {
        const current = this.cache.get(identifier);
        if (current && current.asOf > asOf) continue;
        const entry = { state, asOf, readAt: sentAt };
        this.cache.set(identifier, entry);
        if (this.deps.location) ctx.waitUntil(this.deps.location.writeState(identifier, entry));
      }
    } finally {
      if (this.reReadingSince === sentAt) this.reReadingSince = undefined;
    }
  }

  /** Runs a D1 read with a time-out, logging the first failure of an episode and its end. */
  private async withFailures<Result>(read: () => Promise<Result>): Promise<Result> {
    let timer!: ReturnType<typeof setTimeout>;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`D1 did not answer within ${this.deps.d1TimeoutMs ?? PLAN_D1_TIMEOUT_MS} ms`)),
        this.deps.d1TimeoutMs ?? PLAN_D1_TIMEOUT_MS,
      );
    });
    try {
      const result = await Promise.race([read(), timeout]);
      if (this.failingSince !== undefined) {
        this.deps.logger.info("plan_store_recovered", { failed_for_ms: this.deps.now() - this.failingSince });
        this.failingSince = undefined;
      }
      this.failedAt = undefined;
      return result;
    } catch (error) {
      this.failedAt = this.deps.now();
      this.lastFailure = error;
      if (this.failingSince === undefined) {
        this.failingSince = this.failedAt;
        this.deps.logger.warn("plan_store_unavailable", {
          error: error instanceof Error ? error.message : String(error),
          serving_last_known_for_ms: PLAN_STALENESS_MS + PLAN_FAILURE_GRACE_MS,
        });
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A refusal or misconfiguration as it is, any other failure a 503. */
function gateFailure(error: unknown): unknown {
  return error instanceof GatewayError || error instanceof ConfigError ? error : unavailable("d1", String(error));
}

const changeOf = ([identifier, plan, status, changedAt]: LocationChange): OrganisationChange => ({
  identifier,
  state: { plan: plan ?? undefined, status: status ?? undefined },
  changedAt,
});

/** The location's next window: the previous one's changes before `from` when contiguous, then those read since. */
function nextWindow(
  previous: FeedWindow | undefined,
  from: number,
  changes: OrganisationChange[],
  now: number,
  sentAt: number,
): FeedWindow {
  const contiguous = previous !== undefined && previous.since <= from && previous.now >= from;
  const earlier = contiguous ? previous.changes.filter((change) => change[3] < from) : [];
  let since = Math.max(contiguous ? previous.since : from, now - WINDOW_MS);
  let all: LocationChange[] = [
    ...earlier,
    ...changes.map(({ identifier, state, changedAt }): LocationChange => [
      identifier,
      state.plan ?? null,
      state.status ?? null,
      changedAt,
    ]),
  ].filter((change) => change[3] >= since);
  if (all.length > WINDOW_CHANGES) {
    since = all[all.length - WINDOW_CHANGES]![3];
    all = all.filter((change) => change[3] >= since);
  }
  return { v: 1, since, now, sentAt, changes: all };
}
