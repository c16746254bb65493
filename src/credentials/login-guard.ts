/** Login abuse protection around the credential check: per-IP limit, per-account back-off, audit, re-hash. */
import type { AuditFields, AuditTrail, RequestFacts } from "../audit/trail";
import { LruCache } from "../cache/lru";
import type { Bindings, ConfigSource, WaitUntil } from "../config";
import { refusal, refusalOf } from "../gateway-error";
import { LogSampler, type Logger } from "../log";
import { withinDeadline } from "../deadline";
import { LIMITER_WAIT_MS } from "../storage/bounded";
import { findMemberships, type Database, type LoginMembership } from "../storage/db";
import type { MemberReads } from "../revocation/reads";
import { replacePasswordHash } from "../storage/password-hashes";
import { normalizeEmail } from "./email";
import { checkCredentials, type LoginInput } from "./login";
import { hashPassword } from "./password";
import { throttleKey, type LoginThrottle } from "./throttle";

/** Who is attempting a login (see {@link requestFacts}). */
export type LoginAttempt = RequestFacts;

const IP_RETRY_AFTER_SECONDS = 60;

const REFUSAL_LOG_INTERVAL_MS = 60_000;
const REFUSAL_KEYS_LIMIT = 10_000;

/** What a {@link LoginGuard} works with; `limiterWaitMs` defaults to {@link LIMITER_WAIT_MS}. */
export interface LoginGuardDeps {
  env: Bindings;
  source: ConfigSource;
  /** The primary: the re-hash write. */
  db: Database;
  /** LoginMembership reads from replicas, fresh enough for every revocation and change in force. */
  members: MemberReads;
  throttle: LoginThrottle;
  audit: AuditTrail;
  now: () => number;
  limiterWaitMs?: number;
}

/** Logins of one isolate: limits, back-off, the credential check and its audit trail. */
export class LoginGuard {
  private readonly recentRefusals: LruCache<string, true>;
  private readonly limiterFailures: LogSampler;

  constructor(private readonly deps: LoginGuardDeps) {
    this.limiterFailures = new LogSampler(REFUSAL_LOG_INTERVAL_MS, deps.now);
    this.recentRefusals = new LruCache({
      maxEntries: REFUSAL_KEYS_LIMIT,
      ttlMs: REFUSAL_LOG_INTERVAL_MS,
      now: deps.now,
    });
  }

  /** Applies `LOGIN_LIMITER` to the client IP in the budget `limit` (429 past it); a failing or slow limiter lets it through. */
  async limitClientIp(
    ctx: WaitUntil,
    log: Logger,
    attempt: LoginAttempt,
    limit: "ip" | "sso_callback" = "ip",
  ): Promise<void> {
    const limiter = this.deps.env.LOGIN_LIMITER;
    if (!limiter) return;
    const key = `${limit}:${attempt.ip ?? "unknown"}`;
    let success: boolean;
    try {
      ({ success } = await withinDeadline(() => limiter.limit({ key }), this.deps.limiterWaitMs ?? LIMITER_WAIT_MS));
    } catch (error) {
      const skipped = this.limiterFailures.take();
      if (skipped !== undefined) log.error("login_limit_failed", { error: String(error), skipped });
      return;
    }
    if (success) return;
    this.recordRefusal(ctx, attempt, limit, key);
    throw refusal("tooManyLogins", { retryAfter: IP_RETRY_AFTER_SECONDS });
  }

  /** Checks credentials behind the back-off, then `issue`s tokens; audited as a success only once they exist. */
  async login<Issued>(
    ctx: WaitUntil,
    log: Logger,
    attempt: LoginAttempt,
    input: LoginInput,
    issue: (membership: LoginMembership) => Promise<Issued>,
  ): Promise<Issued> {
    const { throttle, source, members } = this.deps;
    const key = await throttleKey(normalizeEmail(input.email));
    const gate = await throttle.enter(key);
    if (gate.retryAfter !== undefined) {
      this.recordRefusal(ctx, attempt, "account", key);
      throw refusal("tooManyLogins", { retryAfter: gate.retryAfter });
    }
    let settled = false;
    try {
      const outcome = await checkCredentials(
        source.config,
        (email, domain) =>
          members.read(
            log,
            (db) => findMemberships(db, email, domain),
            (rows) => ({
              accounts: [key],
              members: rows.map((row) => row.member.id),
              organisations: rows.map((row) => row.organisation.identifier),
            }),
          ),
        log,
        input,
      );
      if (!outcome.ok) {
        if (outcome.reason === "invalid_credentials") {
          await throttle.recordFailure(key, gate.ticket);
          settled = true;
        }
        this.record(ctx, attempt, {
          outcome: "failure",
          memberId: outcome.memberId,
          organisationId: outcome.organisationId,
          detail: { reason: outcome.reason },
        });
        throw refusal(outcome.refusal);
      }
      const { member, organisation } = outcome.membership;
      await throttle.clearFailures(key, gate.ticket);
      settled = true;
      if (outcome.needsRehash) ctx.waitUntil(this.upgradeHash(log, member.id, member.passwordHash, input.password));
      let issued: Issued;
      try {
        issued = await issue(outcome.membership);
      } catch (error) {
        const reason = refusalOf(error)?.code ?? "internal";
        this.record(ctx, attempt, {
          outcome: "failure",
          memberId: member.id,
          organisationId: organisation.id,
          detail: { reason },
        });
        throw error;
      }
      this.record(ctx, attempt, {
        outcome: "success",
        memberId: member.id,
        organisationId: organisation.id,
        detail: outcome.needsRehash ? { hashUpgrade: true } : undefined,
      });
      return issued;
    } finally {
      // 403, 409 or an error: the attempt stops counting as in flight.
      if (!settled) {
        ctx.waitUntil(
          throttle
            .release(key, gate.ticket)
            .catch((error: unknown) => log.error("login_throttle_release_failed", { error: String(error) })),
        );
      }
    }
  }

  private record(ctx: WaitUntil, attempt: LoginAttempt, fields: Omit<AuditFields, "event">): void {
    const event = fields.outcome === "success" ? "login.success" : "login.failure";
    this.deps.audit.record(ctx, { event, ...attempt, ...fields });
  }

  /** Writes a 429 to D1 at most once a minute per limit key and isolate; every one is logged. */
  private recordRefusal(ctx: WaitUntil, attempt: LoginAttempt, limit: string, key: string): void {
    const detail = { reason: "rate_limited", limit };
    if (this.recentRefusals.get(key)) {
      this.deps.audit.log({
        event: "login.failure",
        outcome: "failure",
        ...attempt,
        detail: { ...detail, sampled: true },
      });
      return;
    }
    this.recentRefusals.set(key, true);
    this.record(ctx, attempt, { outcome: "failure", detail });
  }

  private async upgradeHash(log: Logger, memberId: number, previous: string, password: string): Promise<void> {
    try {
      const next = await hashPassword(password, this.deps.source.config.passwordPepper);
      const replaced = await replacePasswordHash(this.deps.db, memberId, previous, next);
      log.info("password_rehashed", { member_id: memberId, replaced });
    } catch (error) {
      log.error("password_rehash_failed", { member_id: memberId, error: String(error) });
    }
  }
}
