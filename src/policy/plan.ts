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

/** The documented bound: a state is served only while the D1 read that vouches for it is younger than this. */
const PLAN_STALENESS_MS = 60_000;
/** When D1 fails, the last known state is still served for this long past {@link PLAN_STALENESS_MS}; then 503. */
const PLAN_FAILURE_GRACE_MS = 300_000;
/** A request starts a background poll of the feed when the last successful one was sent this long ago. */
const POLL_INTERVAL_MS = 25_000;
/** Each poll re-reads this much of the feed before its cursor, for commits stamped just before the last read. */
const FEED_OVERLAP_MS = 10_000;
/** Changes one feed query returns at most; a full page is followed by the next one at once. */
const FEED_PAGE_LIMIT = 500;
/**
 * More pages than this in one poll (or a full page of changes stamped in one millisecond, e.g. one UPDATE of every
 * organisation): the feed no longer vouches for any cached state, and each is re-read once its own read is stale.
 */
const FEED_PAGES_PER_POLL = 4;
/** After a failed D1 read, no new poll for this long: requests meanwhile get the last known state or 503. */
const RETRY_AFTER_FAILURE_MS = 5_000;
/** A cached state is re-read from D1 this long after its read whatever the feed says (the access-token TTL). */
const ENTRY_MAX_AGE_MS = 3_600_000;
/** Once a cached state is this old, a background poll re-reads in one query every state older than {@link RE_READ_FROM_MS}. */
const RE_READ_DUE_MS = 55 * 60_000;
const RE_READ_FROM_MS = 45 * 60_000;
/** States one background re-read asks for at most. */
const RE_READ_BATCH = 500;
/** The location's feed window reaches back this far (past {@link ENTRY_MAX_AGE_MS}: every state a location holds is installable). */
const WINDOW_MS = 75 * 60_000;
/** Changes the location's window holds at most; past it, it reaches back less far. */
const WINDOW_CHANGES = 4_000;
const CACHE_LIMIT = 10_000;
/** A D1 read of the plan gate that has not answered after this long counts as failed (a hung poll blocks no one). */
const PLAN_D1_TIMEOUT_MS = 5_000;

/** What the isolate knows of one organisation. */
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
  /** The primary: the gate compares D1's clock with what it reads, so its reads must be current. */
  db: Database;
  /** The copy shared by the isolates at this location (a warm start without a D1 read per organisation). */
  location?: PlanLocationCopy;
  now: () => number;
  logger: Logger;
  /** Longest wait for D1 before the last known state is used (default {@link PLAN_D1_TIMEOUT_MS}). */
  d1TimeoutMs?: number;
}

/**
 * Plan and status of organisations, cached per isolate. Instead of re-reading each organisation, the isolate polls
 * one change feed (organisations whose `updated_at` moved, and tombstones; D1 triggers stamp them, so direct edits
 * count) every {@link POLL_INTERVAL_MS}; a successful poll vouches for every cached state read since the feed's
 * continuous coverage began. A state is served while its freshness (its own read, or the last poll that vouches for
 * it) is younger than {@link PLAN_STALENESS_MS}; after that the request runs a poll (or a read of its own). When
 * D1 fails the last known state is served for {@link PLAN_FAILURE_GRACE_MS} more, then 503; an organisation never
 * read gets 503 at once; never a 403 because storage failed.
 *
 * The isolates of one location share their work through the {@link PlanLocationCopy}: a poll first takes a newer
 * feed window another isolate read, and shares the one it read from D1; a new isolate starts from the location's
 * window and takes an organisation's state from the location's last read of it, applying the window's later
 * changes, before it asks D1. States are re-read from D1 within the hour in the background, many per query.
 *
 * A request awaits only D1 reads it sent itself (CONTRIBUTING.md § add a cache); what other requests share is the
 * values a completed read or poll left in the cache. So a request that must wait runs the poll itself when none is
 * running, and reads its own organisation when one is; an organisation's concurrent first requests each read it.
 * An idle isolate's burst therefore costs at most one feed poll plus one point read per request in flight until
 * the first answer; in steady state the background poll stays one per {@link POLL_INTERVAL_MS}.
 */
export class PlanGate {
  private readonly cache = new LruCache<string, KnownOrganisation>({ maxEntries: CACHE_LIMIT });
  /** D1 time the next poll reads changes from (minus the overlap); undefined until the first read, which starts the feed. */
  private cursor: number | undefined;
  /** D1 time since which the polls saw every change: states read before it are vouched for only by their own read. */
  private coveredSince = Infinity;
  /** The latest change of each organisation since {@link recentSince}, as the polls brought them. */
  private recent = new Map<string, OrganisationChange>();
  private recentSince = Infinity;
  /** Gateway time the last successful poll was sent. */
  private syncedAt = -Infinity;
  /** Gateway time the running poll was sent; undefined when none runs. */
  private pollingSince: number | undefined;
  /** Gateway time the running background re-read was sent; undefined when none runs. */
  private reReadingSince: number | undefined;
  /** Gateway time of the last failed D1 read; undefined while D1 answers. */
  private failedAt: number | undefined;
  private lastFailure: unknown;
  /** Gateway time the current failure episode began (logged once, and once when it ends). */
  private failingSince: number | undefined;

  constructor(private readonly deps: PlanGateDeps) {}

  /**
   * The plan of an active organisation on an API plan; 403 `plan_not_eligible` otherwise, 503 when D1 cannot answer.
   * `url`: the request's (the location copy keys by its origin).
   */
  async requireEligible(ctx: WaitUntil, identifier: string, url: string): Promise<string> {
    try {
      this.deps.location?.useOrigin(new URL(url).origin);
      return this.eligiblePlan(this.freshlyKnown(ctx, identifier) ?? (await this.known(ctx, identifier)));
    } catch (error) {
      throw gateFailure(error);
    }
  }

  /**
   * {@link requireEligible} answered without waiting, when the isolate holds a fresh state of the organisation
   * (almost every request); undefined when only a D1 read or a poll can tell.
   */
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

  /** The cached state while it is fresh (starting the background poll when one is due), else undefined. */
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

  /** Whether the feed still vouches for the entry: it covers it, and its own read is younger than the safety net. */
  private feedVouchesFor(entry: KnownOrganisation): boolean {
    return this.feedCovers(entry) && this.deps.now() - entry.readAt < ENTRY_MAX_AGE_MS;
  }

  /** Gateway time the entry's state was last known to be current: its read, or the last poll covering it. */
  private freshAt(entry: KnownOrganisation): number {
    return this.feedCovers(entry) ? Math.max(entry.readAt, this.syncedAt) : entry.readAt;
  }

  private isFresh(entry: KnownOrganisation): boolean {
    const now = this.deps.now();
    return now - this.freshAt(entry) < PLAN_STALENESS_MS && now - entry.readAt < ENTRY_MAX_AGE_MS;
  }

  /** A new isolate takes up the location's feed window while it is fresh: its polls then continue from there. */
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

  /**
   * The location's last read of an organisation, brought up to date with the changes since (when the isolate holds
   * every one of them), cached; undefined when the location has none this isolate can vouch for.
   */
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

  /** Reads one organisation from D1 and caches it (unless a newer state of it arrived meanwhile), for the location too. */
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

  /**
   * Whether a poll was sent and has not finished. One whose request ended before it did (its continuation never
   * runs) stops counting after one D1 time-out per page it may read, so a lost poll delays the next, never stops it.
   */
  private pollRunning(): boolean {
    return this.pollingSince !== undefined && this.deps.now() - this.pollingSince < this.pollDeadlineMs();
  }

  private pollDeadlineMs(): number {
    return FEED_PAGES_PER_POLL * (this.deps.d1TimeoutMs ?? PLAN_D1_TIMEOUT_MS);
  }

  private retryNotYetDue(): boolean {
    return this.failedAt !== undefined && this.deps.now() - this.failedAt < RETRY_AFTER_FAILURE_MS;
  }

  /**
   * One poll, sent by the request that awaits it (or in its background work); polls may overlap. The location's
   * window answers it when another isolate read a newer one that reaches back to the cursor; else D1 does, and the
   * location gets the result.
   */
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

  /** Applies every change of a page read up to D1 time `now` (complete from the cursor, minus the overlap, on). */
  private applyPage(changes: OrganisationChange[], now: number): void {
    this.apply(changes, now);
    this.remember(changes);
    this.cursor = Math.max(this.cursor ?? now, now);
  }

  /** Applies every change since the cursor, in order, to the organisations held: their state is now current as of `now`. */
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

  /** Keeps the latest change of each organisation for the window's span (and at most as many as a window holds). */
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

  /**
   * Once a cached state is {@link RE_READ_DUE_MS} old, re-reads every state older than {@link RE_READ_FROM_MS} (up to
   * {@link RE_READ_BATCH}) in one D1 query, so that no request waits for its safety-net re-read; the location gets
   * them too. Runs in the background of a poll; at most one at a time.
   */
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

  /** Runs a D1 read with a time-out, logging the first failure of an episode and its end, never each request. */
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

/** A failure of the gate as the request's answer: a refusal or misconfiguration as it is, anything else a 503. */
function gateFailure(error: unknown): unknown {
  return error instanceof GatewayError || error instanceof ConfigError ? error : unavailable("d1", String(error));
}

const changeOf = ([identifier, plan, status, changedAt]: LocationChange): OrganisationChange => ({
  identifier,
  state: { plan: plan ?? undefined, status: status ?? undefined },
  changedAt,
});

/**
 * The location's next window: the previous one's changes before `from` when it reaches back to there without a gap,
 * then the changes read from `from` up to D1 time `now`; no older than {@link WINDOW_MS}, at most
 * {@link WINDOW_CHANGES} changes (the oldest go first; `since` follows).
 */
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
