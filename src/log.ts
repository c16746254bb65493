/** The one logger: JSON lines with `level`, `event`, `request_id` and `trace_id` on every line, for audit and operations alike. */

/** How serious a line is; `info` goes to `console.log`, the others to `console.warn` / `console.error`. */
export type LogLevel = "info" | "warn" | "error";

/** Extra fields of a line; never a password, a token or a secret value. */
export type LogFields = Record<string, unknown>;

/** Writes structured lines; a request's logger (see {@link Logger.child}) stamps its request id and trace id on each. */
export class Logger {
  constructor(
    private readonly requestId?: string,
    private readonly traceId?: string,
  ) {}

  child(requestId: string, traceId?: string): Logger {
    return new Logger(requestId, traceId);
  }

  info(event: string, fields?: LogFields): void {
    console.log(this.line("info", event, fields));
  }

  warn(event: string, fields?: LogFields): void {
    console.warn(this.line("warn", event, fields));
  }

  error(event: string, fields?: LogFields): void {
    console.error(this.line("error", event, fields));
  }

  private line(level: LogLevel, event: string, fields: LogFields | undefined): string {
    return JSON.stringify({ level, event, request_id: this.requestId, trace_id: this.traceId, ...fields });
  }
}

/** Lets at most `perInterval` lines through per `intervalMs`, so a flood cannot flood the logs; one per cause. */
export class LogSampler {
  private intervalStart = Number.NEGATIVE_INFINITY;
  private taken = 0;
  private skipped = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = () => Date.now(),
    private readonly perInterval = 1,
  ) {}

  /** Undefined while the interval's lines are spent (the line is dropped and counted), else how many were dropped since the last. */
  take(): number | undefined {
    const now = this.now();
    if (now - this.intervalStart >= this.intervalMs) {
      this.intervalStart = now;
      this.taken = 0;
    }
    if (this.taken >= this.perInterval) {
      this.skipped += 1;
      return undefined;
    }
    this.taken += 1;
    const skipped = this.skipped;
    this.skipped = 0;
    return skipped;
  }
}
