/** Login abuse protection around the credential check: per-IP limit, per-account back-off, audit, re-hash. */
import { audit, logAuditEvent, type AuditEvent, type RequestFacts } from "../audit";
import type { Bindings, Config, WaitUntil } from "../config";
import { GatewayError } from "../errors";
import { database, type Membership } from "../storage/db";
import { replacePasswordHash } from "../storage/password-hashes";
import { normalizeEmail } from "./email";
import { checkCredentials, type LoginInput } from "./login";
import { hashPassword } from "./password";
import { clearFailures, enterAccount, recordFailure, throttleKey } from "./throttle";

/** Who is attempting a login (see {@link requestFacts}). */
export type LoginAttempt = RequestFacts;

/** Seconds a client refused by the per-IP limiter is told to wait: the limiter's period. */
export const IP_RETRY_AFTER_SECONDS = 60;

const TOO_MANY = "Too many login attempts; try again later.";
const REFUSAL_LOG_INTERVAL_MS = 60_000;
const recentRefusals = new Map<string, number>();

function record(
  ctx: WaitUntil,
  env: Bindings,
  attempt: LoginAttempt,
  fields: Pick<AuditEvent, "outcome" | "memberId" | "organisationId" | "detail">,
): void {
  audit(ctx, env.DB, {
    event: fields.outcome === "success" ? "login.success" : "login.failure",
    ...attempt,
    ...fields,
  });
}

/**
 * Records a 429 in D1 at most once a minute per limit key and isolate (every one is logged), so a
 * flood of refused requests cannot turn into a flood of D1 writes.
 */
function recordRefusal(ctx: WaitUntil, env: Bindings, attempt: LoginAttempt, limit: string, key: string): void {
  const detail = { reason: "rate_limited", limit };
  const now = Date.now();
  const last = recentRefusals.get(key);
  if (last !== undefined && now - last < REFUSAL_LOG_INTERVAL_MS) {
    logAuditEvent(
      { event: "login.failure", outcome: "failure", ...attempt, detail: { ...detail, sampled: true } },
      now,
    );
    return;
  }
  if (recentRefusals.size >= 10_000) recentRefusals.clear();
  recentRefusals.set(key, now);
  record(ctx, env, attempt, { outcome: "failure", detail });
}

/** Applies the `LOGIN_LIMITER` binding to the client IP; 429 with `Retry-After` past the limit. */
export async function limitClientIp(env: Bindings, ctx: WaitUntil, attempt: LoginAttempt): Promise<void> {
  if (!env.LOGIN_LIMITER) return;
  const key = `ip:${attempt.ip ?? "unknown"}`;
  const { success } = await env.LOGIN_LIMITER.limit({ key });
  if (success) return;
  recordRefusal(ctx, env, attempt, "ip", key);
  throw new GatewayError("rate_limited", TOO_MANY, { retryAfter: IP_RETRY_AFTER_SECONDS });
}

/**
 * Checks credentials behind the per-account back-off: a locked account (known or not) gets 429
 * before any hashing; a wrong password counts a failure, a success clears them and upgrades an old
 * hash in the background. Every outcome is audited. Returns the membership to issue tokens for.
 */
export async function guardedLogin(
  env: Bindings,
  ctx: WaitUntil,
  config: Config,
  attempt: LoginAttempt,
  input: LoginInput,
): Promise<Membership> {
  const key = await throttleKey(normalizeEmail(input.email));
  const gate = await enterAccount(env.TOKENS, config, key);
  if (gate.retryAfter !== undefined) {
    recordRefusal(ctx, env, attempt, "account", key);
    throw new GatewayError("rate_limited", TOO_MANY, { retryAfter: gate.retryAfter });
  }
  try {
    const outcome = await checkCredentials(config, env.DB, input);
    if (!outcome.ok) {
      if (outcome.reason === "invalid_credentials") await recordFailure(env.TOKENS, config, key, gate.record);
      record(ctx, env, attempt, {
        outcome: "failure",
        memberId: outcome.memberId,
        organisationId: outcome.organisationId,
        detail: { reason: outcome.reason },
      });
      throw outcome.error;
    }
    const { member, organisation } = outcome.membership;
    await clearFailures(env.TOKENS, key, gate.record);
    if (outcome.needsRehash)
      ctx.waitUntil(upgradeHash(env.DB, config, attempt, member.id, member.passwordHash, input.password));
    record(ctx, env, attempt, {
      outcome: "success",
      memberId: member.id,
      organisationId: organisation.id,
      detail: outcome.needsRehash ? { hashUpgrade: true } : undefined,
    });
    return outcome.membership;
  } finally {
    gate.release();
  }
}

/** Re-hashes a verified password into the current PBKDF2 format; failures are logged, retried at the next login. */
async function upgradeHash(
  d1: D1Database,
  config: Config,
  attempt: LoginAttempt,
  memberId: number,
  previous: string,
  password: string,
): Promise<void> {
  try {
    const next = await hashPassword(password, config.passwordPepper);
    const replaced = await replacePasswordHash(database(d1), memberId, previous, next);
    console.log(
      JSON.stringify({
        level: "info",
        event: "password_rehashed",
        member_id: memberId,
        replaced,
        request_id: attempt.requestId,
      }),
    );
  } catch (error) {
    console.error(
      JSON.stringify({
        level: "error",
        event: "password_rehash_failed",
        member_id: memberId,
        request_id: attempt.requestId,
        error: String(error),
      }),
    );
  }
}
