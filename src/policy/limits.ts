/** Per-organisation request limits on the proxied API: one rate-limiting binding per plan, keyed by organisation. */
import { ConfigError, type Bindings, type Config } from "../config";
import { GatewayError } from "../gateway-error";
import { LogSampler, type Logger } from "../log";
import { withinDeadline } from "../deadline";
import { LIMITER_WAIT_MS } from "../storage/bounded";

/** The window of every API limit in seconds: the bindings' `simple.period`, so `API_RATE_LIMITS` is per minute. */
export const API_LIMIT_WINDOW_SECONDS = 60;

const LIMIT_FAILURE_LOG_INTERVAL_MS = 60_000;

/** The policy name in `RateLimit-Policy` / `RateLimit` (draft-ietf-httpapi-ratelimit-headers-11). */
const POLICY = '"organisation"';

/** The binding that enforces `plan`'s limit: `API_LIMIT_` and the plan name upper-cased (`API_LIMIT_PROFESSIONAL`). */
export function limitBindingName(plan: string): string {
  return `API_LIMIT_${plan.toUpperCase().replaceAll("-", "_")}`;
}

function isRateLimit(value: unknown): value is RateLimit {
  return typeof (value as RateLimit | undefined)?.limit === "function";
}

/** One plan's limit: its binding and the header values built once (`exhausted`: the `RateLimit` of a 429). */
export interface PlanLimit {
  readonly binding: RateLimit;
  readonly perMinute: number;
  readonly policy: string;
  readonly exhausted: string;
}

/** What {@link OrganisationLimits} are built from; `waitMs` defaults to {@link LIMITER_WAIT_MS}. */
export interface OrganisationLimitsDeps {
  env: Bindings;
  config: Config;
  logger: Logger;
  now?: () => number;
  waitMs?: number;
}

/** One isolate's limits; an unbound plan is not limited (logged once), a bound one needs its `API_RATE_LIMITS`. */
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

  /** Counts a request against its plan's limit (429 past it); a failing or slow binding lets it through (logged). */
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
