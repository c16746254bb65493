/** Per-organisation request limits on the proxied API, by plan: one rate-limiting binding per plan, keyed by organisation. */
import { ConfigError, type Bindings, type Config } from "../config";
import { GatewayError } from "../gateway-error";
import { LogSampler, type Logger } from "../log";
import { withinDeadline } from "../deadline";
import { LIMITER_WAIT_MS } from "../storage/bounded";

/**
 * The window of every API limit, in seconds. Cloudflare's rate-limiting binding counts per 10 or 60 s
 * (`simple.period`); the API_LIMIT_* bindings use 60, so `API_RATE_LIMITS` is per minute.
 */
export const API_LIMIT_WINDOW_SECONDS = 60;

/** At most one `api_limit_failed` line per isolate in this interval (ms). */
const LIMIT_FAILURE_LOG_INTERVAL_MS = 60_000;

/** The policy name in `RateLimit-Policy` / `RateLimit` (draft-ietf-httpapi-ratelimit-headers-11): one per organisation. */
const POLICY = '"organisation"';

/** The binding that enforces `plan`'s limit: `API_LIMIT_` and the plan name upper-cased (`API_LIMIT_PROFESSIONAL`). */
export function limitBindingName(plan: string): string {
  return `API_LIMIT_${plan.toUpperCase().replaceAll("-", "_")}`;
}

function isRateLimit(value: unknown): value is RateLimit {
  return typeof (value as RateLimit | undefined)?.limit === "function";
}

/** One plan's limit: its binding and the header values built once. */
export interface PlanLimit {
  readonly binding: RateLimit;
  readonly perMinute: number;
  /** `RateLimit-Policy` value, e.g. `"organisation";q=600;w=60`. */
  readonly policy: string;
  /** `RateLimit` value of a refused request: nothing left in this window. */
  readonly exhausted: string;
}

/** What {@link OrganisationLimits} are built from. */
export interface OrganisationLimitsDeps {
  env: Bindings;
  config: Config;
  logger: Logger;
  now?: () => number;
  /** Longest wait for a binding (default {@link LIMITER_WAIT_MS}). */
  waitMs?: number;
}

/**
 * The limits of one isolate, built on first use from the configuration and the bound bindings. A plan in
 * `API_PLANS` without its binding is not limited (logged once here, never per request); a bound binding
 * whose plan `API_RATE_LIMITS` does not state is a `ConfigError` (the headers could not state the limit).
 */
export class OrganisationLimits {
  private readonly byPlan = new Map<string, PlanLimit>();
  private readonly failures: LogSampler;

  private readonly waitMs: number;

  constructor({ env, config, logger, now = () => Date.now(), waitMs = LIMITER_WAIT_MS }: OrganisationLimitsDeps) {
    this.waitMs = waitMs;
    this.failures = new LogSampler(LIMIT_FAILURE_LOG_INTERVAL_MS, now);
    for (const plan of config.apiPlans) {
      const name = limitBindingName(plan);
      const binding = (env as unknown as Record<string, unknown>)[name];
      if (!isRateLimit(binding)) {
        logger.warn("api_limit_disabled", { plan, binding: name, reason: `${name} is not bound` });
        continue;
      }
      const perMinute = config.apiRateLimits.get(plan);
      if (perMinute === undefined) {
        throw new ConfigError(`API_RATE_LIMITS must state the limit of plan ${plan} (binding ${name} is bound)`);
      }
      const policy = `${POLICY};q=${perMinute};w=${API_LIMIT_WINDOW_SECONDS}`;
      this.byPlan.set(plan, { binding, perMinute, policy, exhausted: `${POLICY};r=0;t=${API_LIMIT_WINDOW_SECONDS}` });
    }
  }

  /**
   * Counts one request of `organisation` against its plan's limit (none when the plan is not limited). Past
   * it: 429 `rate_limited` with `Retry-After` and the RateLimit headers. A binding that fails, or gives no
   * answer within {@link LIMITER_WAIT_MS}, lets the request through and is logged (at most once a minute per
   * isolate): the limiter must not take the API down.
   */
  count(plan: string, organisation: string, log: Logger): Promise<void> | void {
    const limit = this.byPlan.get(plan);
    if (limit !== undefined) return this.countWith(limit, plan, organisation, log);
  }

  private async countWith(limit: PlanLimit, plan: string, organisation: string, log: Logger): Promise<void> {
    let success: boolean;
    try {
      ({ success } = await withinDeadline(() => limit.binding.limit({ key: organisation }), this.waitMs));
    } catch (error) {
      const skipped = this.failures.take();
      if (skipped !== undefined) log.error("api_limit_failed", { plan, organisation, error: String(error), skipped });
      return;
    }
    if (success) return;
    throw new GatewayError(
      "rate_limited",
      `This organisation's API limit (${limit.perMinute} requests a minute) is used up; try again later.`,
      {
        retryAfter: API_LIMIT_WINDOW_SECONDS,
        headers: { "RateLimit-Policy": limit.policy, RateLimit: limit.exhausted },
      },
    );
  }
}
