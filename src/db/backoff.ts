/** Settings of an exponential backoff, ms. */
export interface BackoffOptions {
  /** Delay ceiling of the first retry, ms. */
  baseMs: number;
  /** Cap on any one delay, ms. */
  maxMs: number;
}

/**
 * The delay before retry number `retry` (0 for the first retry): exponential backoff with
 * FULL jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"), i.e. a uniform draw
 * from `[0, min(maxMs, baseMs * 2^retry))`. Full jitter spreads a fleet of restarting
 * processes evenly instead of letting them reconnect in lockstep.
 *
 * @param random - source of uniform numbers in [0, 1); injectable for tests.
 * @returns a whole number of milliseconds, never negative, never above `maxMs`.
 */
export function fullJitterDelay(
  retry: number,
  opts: BackoffOptions,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.max(0, retry));
  return Math.max(0, Math.floor(random() * ceiling));
}

function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error('aborted', { cause: reason });
}

/**
 * Resolves after `ms`, or rejects with `signal.reason` (wrapped in an Error if it is not one) as soon as `signal` aborts
 * (immediately when it is already aborted). The timer is cleared on abort, so an aborted
 * wait keeps nothing alive.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
