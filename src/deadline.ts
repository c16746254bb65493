/** A bounded wait: the one way the gateway stops waiting for a dependency (storage, limiter, origin). */

/** Thrown by {@link withinDeadline} when the work did not settle in time. */
export class DeadlineExceeded extends Error {
  override name = "DeadlineExceeded";
}

/** `work`, or {@link DeadlineExceeded} once `waitMs` passed; a caller that can cancel the work does so itself. */
export async function withinDeadline<T>(work: () => Promise<T>, waitMs: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceeded(`no answer within ${waitMs} ms`)), waitMs);
  });
  try {
    return await Promise.race([Promise.resolve().then(work), deadline]);
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
}
