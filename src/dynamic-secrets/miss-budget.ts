/** A token bucket per isolate: how many D1 look-ups of unknown organisations an isolate may make. */

/** Look-ups allowed at once after a quiet spell. */
export const MISS_BURST = 10;
/** Look-ups regained per second. */
export const MISS_REFILL_PER_SECOND = 0.5;

/** Rations D1 reads for names nothing vouches for, so a flood of random names costs a bounded number of queries. */
export class MissBudget {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly now: () => number,
    private readonly burst = MISS_BURST,
    private readonly perSecond = MISS_REFILL_PER_SECOND,
  ) {
    this.tokens = burst;
    this.updatedAt = now();
  }

  /** Takes one look-up; false when the budget is spent (nothing is taken then). */
  take(): boolean {
    const now = this.now();
    const elapsed = Math.max(0, now - this.updatedAt);
    this.updatedAt = Math.max(this.updatedAt, now);
    this.tokens = Math.min(this.burst, this.tokens + (elapsed / 1000) * this.perSecond);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
