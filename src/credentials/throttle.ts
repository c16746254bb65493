/** Per-account login back-off: a failure counter in KV (`login-fail:` keys), mirrored in isolate memory. */
import { LruCache } from "../cache/lru";
import type { Config, ConfigSource } from "../config";
import { sha256Hex } from "../digest";
import type { Logger } from "../log";

/** KV key prefix of account failure counters; the rest is the SHA-256 (hex) of the normalised email. */
export const THROTTLE_KEY_PREFIX = "login-fail:";

/** Back-off settings, from `LOGIN_FREE_ATTEMPTS`, `LOGIN_BACKOFF_BASE_SECONDS`, `LOGIN_BACKOFF_MAX_SECONDS`. */
export type ThrottleSettings = Pick<Config, "loginFreeAttempts" | "loginBackoffBaseSeconds" | "loginBackoffMaxSeconds">;

/** What is stored per account; times in ms since the epoch. */
export interface FailureRecord {
  failures: number;
  /** No attempt is checked before this instant; 0 while failures are below the free attempts. */
  lockedUntil: number;
  /** When this record may be forgotten (mirrors the KV `expirationTtl`). */
  expiresAt: number;
}

/** The answer of {@link enterAccount}: either a refusal, or a ticket to release when the check is over. */
export type AccountGate =
  { retryAfter: number } | { retryAfter: undefined; record: FailureRecord | undefined; release: () => void };

const MEMORY_LIMIT = 10_000;

/** The KV key counting failures of every membership with this (already normalised) email. */
export async function throttleKey(email: string): Promise<string> {
  return THROTTLE_KEY_PREFIX + (await sha256Hex(email));
}

/** Seconds an account is locked after its `failures`-th consecutive failure: 0, then base·2ⁿ up to the cap. */
export function backoffSeconds(settings: ThrottleSettings, failures: number): number {
  if (failures < settings.loginFreeAttempts) return 0;
  return Math.min(
    settings.loginBackoffMaxSeconds,
    settings.loginBackoffBaseSeconds * 2 ** (failures - settings.loginFreeAttempts),
  );
}

function worse(a: FailureRecord | undefined, b: FailureRecord | undefined): FailureRecord | undefined {
  if (!a || !b) return a ?? b;
  return a.failures >= b.failures ? { ...a, lockedUntil: Math.max(a.lockedUntil, b.lockedUntil) } : worse(b, a);
}

function parse(raw: unknown): FailureRecord | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const { failures, lockedUntil, expiresAt } = raw as Record<string, unknown>;
  if (!Number.isSafeInteger(failures) || typeof lockedUntil !== "number" || typeof expiresAt !== "number")
    return undefined;
  return { failures: failures as number, lockedUntil, expiresAt };
}

/** The per-account back-off of one isolate: the KV counters, their in-memory mirror, attempts in flight. */
export class LoginThrottle {
  /** Failure records this isolate wrote or read, so KV's write limits and lag cannot hide a failure. */
  private readonly memory = new LruCache<string, FailureRecord>({ maxEntries: MEMORY_LIMIT });
  /** Attempts per account still running here. */
  private readonly inFlight = new Map<string, number>();

  constructor(
    private readonly kv: KVNamespace,
    private readonly source: ConfigSource,
    private readonly now: () => number,
  ) {}

  /**
   * Decides, before any password hashing, whether an attempt on this account may proceed. Attempts
   * still running in this isolate count as failures, so a parallel burst cannot outrun the counter.
   */
  async enter(log: Logger, key: string): Promise<AccountGate> {
    const settings = this.source.config;
    const now = this.now();
    const record = await this.readRecord(log, key, now);
    if (record && record.lockedUntil > now) return { retryAfter: Math.ceil((record.lockedUntil - now) / 1000) };
    const inFlight = this.inFlight;
    const running = inFlight.get(key) ?? 0;
    if (running > 0 && backoffSeconds(settings, (record?.failures ?? 0) + running) > 0) {
      return { retryAfter: settings.loginBackoffBaseSeconds };
    }
    inFlight.set(key, running + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const left = (inFlight.get(key) ?? 1) - 1;
      if (left > 0) inFlight.set(key, left);
      else inFlight.delete(key);
    };
    return { retryAfter: undefined, record, release };
  }

  /**
   * Counts one more failure and locks the account for its back-off. A KV write refused (e.g. more
   * than one write per key per second) is logged and ignored: this isolate still remembers it.
   */
  async recordFailure(log: Logger, key: string, previous: FailureRecord | undefined): Promise<FailureRecord> {
    const settings = this.source.config;
    const now = this.now();
    const latest = worse(previous, this.memory.get(key));
    const failures = (latest && latest.expiresAt > now ? latest.failures : 0) + 1;
    const lockSeconds = backoffSeconds(settings, failures);
    const ttlSeconds = Math.max(60, lockSeconds + settings.loginBackoffMaxSeconds);
    const record: FailureRecord = {
      failures,
      lockedUntil: lockSeconds ? now + lockSeconds * 1000 : 0,
      expiresAt: now + ttlSeconds * 1000,
    };
    this.remember(key, record);
    try {
      await this.kv.put(key, JSON.stringify(record), { expirationTtl: ttlSeconds });
    } catch (error) {
      log.error("login_throttle_write_failed", { error: String(error) });
    }
    return record;
  }

  /** Forgets an account's failures after a successful login; costs nothing when there were none. */
  async clearFailures(log: Logger, key: string, previous: FailureRecord | undefined): Promise<void> {
    const known = previous ?? this.memory.get(key);
    this.remember(key, undefined);
    if (!known) return;
    try {
      await this.kv.delete(key);
    } catch (error) {
      log.error("login_throttle_clear_failed", { error: String(error) });
    }
  }

  private async readRecord(log: Logger, key: string, now: number): Promise<FailureRecord | undefined> {
    let stored: FailureRecord | undefined;
    try {
      stored = parse(await this.kv.get(key, "json"));
    } catch (error) {
      log.error("login_throttle_read_failed", { error: String(error) });
    }
    const record = worse(stored, this.memory.get(key));
    return record && record.expiresAt > now ? record : undefined;
  }

  private remember(key: string, record: FailureRecord | undefined): void {
    this.memory.delete(key);
    if (record) this.memory.set(key, record);
  }
}
