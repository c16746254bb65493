/** The plan gate: only active organisations on an API plan pass; state cached per isolate ≤ 60 s. */
import type { MiddlewareHandler } from "hono";
import { getConfig, type AppEnv, type Config, type WaitUntil } from "../config";
import { GatewayError } from "../errors";
import { database, findOrganisationAccess } from "../storage/db";

interface CachedAccess {
  plan: string | undefined;
  status: string | undefined;
  fetchedAt: number;
}

/** After this, a cached entry is still served but refreshed in the background. */
const REFRESH_AFTER_MS = 30_000;
/** After this, a cached entry is never served: the contract's 60 s staleness bound. */
const MAX_AGE_MS = 60_000;
const CACHE_LIMIT = 10_000;
const cache = new Map<string, CachedAccess>();
const refreshing = new Set<string>();

async function load(d1: D1Database, identifier: string): Promise<CachedAccess> {
  const row = await findOrganisationAccess(database(d1), identifier);
  const entry = { plan: row?.plan, status: row?.status, fetchedAt: Date.now() };
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(identifier, entry);
  return entry;
}

async function access(d1: D1Database, identifier: string, ctx: WaitUntil): Promise<CachedAccess> {
  const cached = cache.get(identifier);
  const age = cached ? Date.now() - cached.fetchedAt : Infinity;
  if (!cached || age >= MAX_AGE_MS) return load(d1, identifier);
  if (age >= REFRESH_AFTER_MS && !refreshing.has(identifier)) {
    refreshing.add(identifier);
    ctx.waitUntil(load(d1, identifier).finally(() => refreshing.delete(identifier)));
  }
  return cached;
}

/** Whether an organisation row may use the API under `config`. */
export function isEligible(config: Config, organisation: { plan?: string; status?: string }): boolean {
  return organisation.status === "active" && organisation.plan !== undefined && config.apiPlans.has(organisation.plan);
}

/** Throws 403 `plan_not_eligible` unless the organisation is active and on an API plan. */
export async function requireEligiblePlan(
  config: Config,
  d1: D1Database,
  identifier: string,
  ctx: WaitUntil,
): Promise<void> {
  const entry = await access(d1, identifier, ctx);
  if (!isEligible(config, entry)) {
    throw new GatewayError("plan_not_eligible", "This organisation's plan does not include API access.");
  }
}

/** Middleware after `bearerAuth`: the token's organisation must be active and on an API plan (403). */
export function requirePlan(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await requireEligiblePlan(getConfig(c.env), c.env.DB, c.get("claims").organisationEntityIdentifier, c.executionCtx);
    await next();
  };
}

/** Drops cached plan state, e.g. right after this isolate changed an organisation. */
export function forgetOrganisation(identifier: string): void {
  cache.delete(identifier);
}
