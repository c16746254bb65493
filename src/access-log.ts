/** The access log: one JSON line per request the gateway refused or failed, a sample of the others, at most a bounded number a second per isolate. */
import { LogSampler, type Logger } from "./log";
import type { RouteKind } from "./metrics";

/** Access lines one isolate writes a second, at most; past it they are dropped, counted, and the next line says how many. */
export const ACCESS_LINES_PER_SECOND = 100;

/** One request as its access line records it; optional fields are left out where the request had no such value. */
export interface AccessEntry {
  method: string;
  route: RouteKind;
  status: number;
  code?: string;
  organisation?: string;
  member?: string;
  durationMs: number;
  colo?: string;
}

/** What an {@link AccessLog} decides with. */
export interface AccessLogDeps {
  /** Share of the requests the gateway neither refused nor failed that are logged, 0–1 (`ACCESS_LOG_SAMPLE_RATE`). */
  sampleRate: number;
  now: () => number;
  random?: () => number;
}

/** The per-isolate access log: which requests get a line, and the flood bound. */
export class AccessLog {
  private readonly budget: LogSampler;
  private readonly random: () => number;

  constructor(private readonly deps: AccessLogDeps) {
    this.budget = new LogSampler(1000, deps.now, ACCESS_LINES_PER_SECOND);
    this.random = deps.random ?? Math.random;
  }

  /** Whether a request gets a line: always when the gateway refused or failed it, else with the sample rate. */
  wanted(refused: boolean): boolean {
    return refused || this.random() < this.deps.sampleRate;
  }

  /** Writes `entry` on the request's logger unless this second's lines are spent; `sampled` marks a line of the sample. */
  write(log: Logger, entry: AccessEntry, sampled: boolean): void {
    const dropped = this.budget.take();
    if (dropped === undefined) return;
    const { durationMs, ...fields } = entry;
    const line = {
      ...fields,
      duration_ms: durationMs,
      ...(sampled ? { sampled: true } : {}),
      ...(dropped > 0 ? { dropped } : {}),
    };
    if (entry.status >= 500) log.error("access", line);
    else log.info("access", line);
  }
}
