/** Per-account login back-off: the client of the `LoginBackoff` Durable Object of each normalised email. */
import type { Config, ConfigSource } from "../config";
import { sha256Hex } from "../digest";
import type { FailureRecord, LoginBackoff } from "./login-backoff";

export { type FailureRecord } from "./login-backoff";

type ThrottleSettings = Pick<Config, "loginFreeAttempts" | "loginBackoffBaseSeconds" | "loginBackoffMaxSeconds">;

/** The answer of {@link LoginThrottle.enter}: either a refusal, or a ticket to settle when the check is over. */
export type AccountGate = { retryAfter: number } | { retryAfter: undefined; ticket: string };

/** The name of an email's back-off object: the SHA-256 (hex) of the normalised email, never the email. */
export function throttleKey(email: string): Promise<string> {
  return sha256Hex(email);
}

function settingsOf(config: Config): ThrottleSettings {
  const { loginFreeAttempts, loginBackoffBaseSeconds, loginBackoffMaxSeconds } = config;
  return { loginFreeAttempts, loginBackoffBaseSeconds, loginBackoffMaxSeconds };
}

/** What a {@link LoginThrottle} asks and reads. */
export interface LoginThrottleDeps {
  objects: DurableObjectNamespace<LoginBackoff>;
  source: ConfigSource;
  now: () => number;
}

/** One `LoginBackoff` object per email decides; when it fails, the login fails (503) rather than skip the back-off. */
export class LoginThrottle {
  constructor(private readonly deps: LoginThrottleDeps) {}

  /** Decides, before any password hashing, whether an attempt on this account may proceed. */
  enter(key: string): Promise<AccountGate> {
    return this.object(key).enter(settingsOf(this.deps.source.config), this.deps.now());
  }

  recordFailure(key: string, ticket: string): Promise<FailureRecord> {
    return this.object(key).fail(ticket, settingsOf(this.deps.source.config), this.deps.now());
  }

  clearFailures(key: string, ticket: string): Promise<void> {
    return this.object(key).succeed(ticket);
  }

  unlock(key: string): Promise<FailureRecord | undefined> {
    return this.object(key).unlock(this.deps.now());
  }

  release(key: string, ticket: string): Promise<void> {
    return this.object(key).release(ticket);
  }

  private object(key: string): DurableObjectStub<LoginBackoff> {
    return this.deps.objects.get(this.deps.objects.idFromName(key));
  }
}
