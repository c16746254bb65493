/** The `LoginBackoff` Durable Object: the one exact failed-login counter of one normalised email, worldwide. */
import { DurableObject } from "cloudflare:workers";
import { ObjectTables } from "../storage/object-tables";

/** Back-off settings, from `LOGIN_FREE_ATTEMPTS`, `LOGIN_BACKOFF_BASE_SECONDS`, `LOGIN_BACKOFF_MAX_SECONDS`. */
export interface BackoffSettings {
  loginFreeAttempts: number;
  loginBackoffBaseSeconds: number;
  loginBackoffMaxSeconds: number;
}

/** What is stored per email (times in ms); `lockedUntil` is 0 while failures are below the free attempts. */
export interface FailureRecord {
  failures: number;
  lockedUntil: number;
  expiresAt: number;
}

/** The answer of {@link LoginBackoff.enter}: a refusal, or a ticket to settle when the check is over. */
export type EnterDecision = { retryAfter: number } | { retryAfter: undefined; ticket: string };

/** An admitted attempt never settled (a crashed worker) stops counting after this; a real check takes < 1 s. */
const ATTEMPT_TIMEOUT_MS = 30_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS failures (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  failures INTEGER NOT NULL,
  locked_until INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
  ticket TEXT PRIMARY KEY,
  started_at INTEGER NOT NULL
);`;

type FailureRow = { failures: number; locked_until: number; expires_at: number };

function backoffSeconds(settings: BackoffSettings, failures: number): number {
  if (failures < settings.loginFreeAttempts) return 0;
  return Math.min(
    settings.loginBackoffMaxSeconds,
    settings.loginBackoffBaseSeconds * 2 ** (failures - settings.loginFreeAttempts),
  );
}

/** One object per email hash; attempts in flight count as failures (docs/security.md § Login protection). */
export class LoginBackoff extends DurableObject {
  private readonly tables: ObjectTables;

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    this.tables = new ObjectTables(ctx.storage, SCHEMA);
  }

  /** Decides, before any password hashing, whether one more attempt may be checked now. */
  async enter(settings: BackoffSettings, now: number): Promise<EnterDecision> {
    const decision = this.ctx.storage.transactionSync((): EnterDecision => {
      this.sql("DELETE FROM attempts WHERE started_at < ?", now - ATTEMPT_TIMEOUT_MS);
      const record = this.current(now);
      if (record && record.lockedUntil > now) return { retryAfter: Math.ceil((record.lockedUntil - now) / 1000) };
      const running = this.sql<{ n: number }>("SELECT count(*) AS n FROM attempts")[0]?.n ?? 0;
      if (running > 0 && backoffSeconds(settings, (record?.failures ?? 0) + running) > 0) {
        return { retryAfter: settings.loginBackoffBaseSeconds };
      }
      const ticket = crypto.randomUUID();
      this.sql("INSERT INTO attempts (ticket, started_at) VALUES (?, ?)", ticket, now);
      return { retryAfter: undefined, ticket };
    });
    await this.forgetAt(now + ATTEMPT_TIMEOUT_MS);
    return decision;
  }

  /** Settles an attempt as a wrong password: one more failure, and the lock it earns. */
  async fail(ticket: string, settings: BackoffSettings, now: number): Promise<FailureRecord> {
    const record = this.ctx.storage.transactionSync((): FailureRecord => {
      this.sql("DELETE FROM attempts WHERE ticket = ?", ticket);
      const failures = (this.current(now)?.failures ?? 0) + 1;
      const lockSeconds = backoffSeconds(settings, failures);
      const ttlSeconds = Math.max(60, lockSeconds + settings.loginBackoffMaxSeconds);
      const next: FailureRecord = {
        failures,
        lockedUntil: lockSeconds ? now + lockSeconds * 1000 : 0,
        expiresAt: now + ttlSeconds * 1000,
      };
      this.sql(
        "INSERT OR REPLACE INTO failures (id, failures, locked_until, expires_at) VALUES (1, ?, ?, ?)",
        next.failures,
        next.lockedUntil,
        next.expiresAt,
      );
      return next;
    });
    await this.forgetAt(record.expiresAt);
    return record;
  }

  /** Settles an attempt as a successful login: the failures are forgotten. */
  async succeed(ticket: string): Promise<void> {
    this.ctx.storage.transactionSync(() => {
      this.sql("DELETE FROM attempts WHERE ticket = ?", ticket);
      this.sql("DELETE FROM failures");
    });
  }

  /** Settles an attempt that neither failed nor succeeded on the password (403, 409, an error). */
  async release(ticket: string): Promise<void> {
    this.sql("DELETE FROM attempts WHERE ticket = ?", ticket);
  }

  /** Clears the failures and lock at once (`member:unlock`); returns the live record it cleared. */
  async unlock(now: number): Promise<FailureRecord | undefined> {
    return this.ctx.storage.transactionSync(() => {
      const cleared = this.current(now);
      this.sql("DELETE FROM failures");
      return cleared;
    });
  }

  async record(now: number): Promise<FailureRecord | undefined> {
    return this.current(now);
  }

  /** Deletes everything once nothing is live, so random emails leave nothing behind. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const record = this.current(now);
    const pending =
      this.sql<{ n: number }>("SELECT count(*) AS n FROM attempts WHERE started_at >= ?", now - ATTEMPT_TIMEOUT_MS)[0]
        ?.n ?? 0;
    if (record || pending > 0) {
      await this.ctx.storage.setAlarm(Math.max(record?.expiresAt ?? 0, now + ATTEMPT_TIMEOUT_MS));
      return;
    }
    await this.tables.deleteAll();
  }

  private current(now: number): FailureRecord | undefined {
    const row = this.sql<FailureRow>("SELECT failures, locked_until, expires_at FROM failures WHERE id = 1")[0];
    if (!row || row.expires_at <= now) return undefined;
    return { failures: row.failures, lockedUntil: row.locked_until, expiresAt: row.expires_at };
  }

  private async forgetAt(at: number): Promise<void> {
    const scheduled = await this.ctx.storage.getAlarm();
    if (scheduled === null || scheduled < at) await this.ctx.storage.setAlarm(at);
  }

  private sql<Row extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]): Row[] {
    return this.tables.query<Row>(query, ...bindings);
  }
}
