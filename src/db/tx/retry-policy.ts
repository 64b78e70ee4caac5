import { handleWhen, retry, type IBackoff, type IBackoffFactory } from 'cockatiel';
import { fullJitterDelay } from '../backoff.js';
import type { ResolvedRetry } from './tx-options.js';

/** How `runWithRetry` runs one callback. */
export interface RetryRunOptions extends ResolvedRetry {
  /**
   * Whether `err` may be retried after waiting `delayMs` (kind, idempotency, deadline, the
   * `beforeRetry` hooks). Called once per failure that has an attempt left, with the attempt
   * that failed (1-based); the manager's rules live there, the schedule lives here.
   */
  shouldRetry(err: unknown, delayMs: number, attempt: number): boolean;
  /** Called before each wait: the attempt that failed (1-based), the wait, the error. */
  onRetry?(info: { attempt: number; delayMs: number; error: unknown }): void;
  /** Uniform source in [0, 1) for the jitter; injectable for tests. Default Math.random. */
  random?: () => number;
}

/** A backoff whose next duration was already drawn by the retry predicate. */
class DrawnBackoff implements IBackoff<unknown> {
  readonly #read: () => number;
  constructor(read: () => number) {
    this.#read = read;
  }
  get duration(): number {
    return this.#read();
  }
  next(): IBackoff<unknown> {
    return this;
  }
}

/**
 * Runs `fn` and re-runs it on failures that `shouldRetry` accepts, at most `maxAttempts`
 * times in all, waiting between attempts with exponential backoff and full jitter: before
 * retry n (0-based) a uniform draw from [0, min(maxDelayMs, baseDelayMs * 2^n)) ms
 * (`fullJitterDelay`). Built on cockatiel's retry policy; the delay is drawn in the predicate
 * so that `shouldRetry` can refuse a wait that would pass the transaction's deadline.
 *
 * `fn` receives the attempt number, 1-based. The last error is rethrown unchanged.
 */
export async function runWithRetry<T>(
  fn: (attempt: number) => Promise<T>,
  opts: RetryRunOptions,
): Promise<T> {
  if (opts.maxAttempts <= 1) return fn(1);
  const random = opts.random ?? Math.random;
  let retries = 0;
  let drawn = 0;
  const backoff: IBackoffFactory<unknown> = { next: () => new DrawnBackoff(() => drawn) };
  const policy = retry(
    handleWhen((err) => {
      drawn = fullJitterDelay(retries, { baseMs: opts.baseDelayMs, maxMs: opts.maxDelayMs }, random);
      const again = retries + 1 < opts.maxAttempts && opts.shouldRetry(err, drawn, retries + 1);
      if (again) retries++;
      return again;
    }),
    { maxAttempts: opts.maxAttempts - 1, backoff },
  );
  policy.onRetry((event) => {
    if ('error' in event)
      opts.onRetry?.({ attempt: event.attempt, delayMs: event.delay, error: event.error });
  });
  return policy.execute(({ attempt }) => fn(attempt + 1));
}
