/** The plan gate: only active organisations on an API plan pass; state cached per isolate ≤ 60 s. */
import { LruCache } from "../cache/lru";
import type { ConfigSource, WaitUntil } from "../config";
import { refusal } from "../gateway-error";
import { findOrganisationAccess, type Database } from "../storage/db";
import { isEligible } from "./eligibility";

interface CachedAccess {
  plan: string | undefined;
  status: string | undefined;
  fetchedAt: number;
}

/** After this, a cached entry is still served but refreshed in the background. */
const REFRESH_AFTER_MS = 30_000;
/** After this, a cached entry is never served: the documented 60 s staleness bound. */
const MAX_AGE_MS = 60_000;
const CACHE_LIMIT = 10_000;

/** Plan and status of organisations, read from D1 and cached per isolate for at most {@link MAX_AGE_MS}. */
export class PlanGate {
  private readonly cache: LruCache<string, CachedAccess>;
  /** Organisations whose entry is being refreshed in the background. */
  private readonly refreshing = new Set<string>();

  constructor(
    private readonly source: ConfigSource,
    private readonly db: Database,
    private readonly now: () => number,
  ) {
    this.cache = new LruCache({ maxEntries: CACHE_LIMIT, ttlMs: MAX_AGE_MS, now });
  }

  /** Throws `plan_not_eligible` unless the organisation is active and on an API plan; returns the plan. */
  async requireEligible(ctx: WaitUntil, identifier: string): Promise<string> {
    const entry = await this.access(ctx, identifier);
    if (!isEligible(this.source.config, entry)) throw refusal("planNotEligible");
    return entry.plan!;
  }

  private async load(identifier: string): Promise<CachedAccess> {
    const row = await findOrganisationAccess(this.db, identifier);
    const entry = { plan: row?.plan, status: row?.status, fetchedAt: this.now() };
    this.cache.set(identifier, entry);
    return entry;
  }

  private async access(ctx: WaitUntil, identifier: string): Promise<CachedAccess> {
    const cached = this.cache.get(identifier);
    if (!cached) return this.load(identifier);
    if (this.now() - cached.fetchedAt >= REFRESH_AFTER_MS && !this.refreshing.has(identifier)) {
      this.refreshing.add(identifier);
      ctx.waitUntil(this.load(identifier).finally(() => this.refreshing.delete(identifier)));
    }
    return cached;
  }
}
