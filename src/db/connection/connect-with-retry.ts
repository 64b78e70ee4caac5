import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import { fullJitterDelay, sleep } from '../backoff.js';
import { classifyConnectError } from '../errors/classify-error.js';
import { ConnectionError } from '../errors/errors.js';

/** Settings of `connectWithRetry`. */
export interface ConnectRetryOptions {
  /** Attempts after the first one. */
  maxRetries: number;
  /** Base of the exponential backoff, ms. */
  retryDelayMs: number;
  /** Cap on one delay, ms. */
  maxRetryDelayMs: number;
  /** Aborts the loop promptly, during an attempt or a wait. */
  signal?: AbortSignal | undefined;
  logger: Logger;
  metrics: Metrics;
  /** Uniform source in [0, 1) for the jitter; injectable for tests. */
  random?: () => number;
}

/**
 * Runs `attempt` until it resolves, retrying transient failures (see `classifyConnectError`)
 * up to `maxRetries` times with exponential backoff and full jitter. Every attempt is
 * counted (`connectAttempts{result}`) and logged: a retried failure at warn, the final
 * failure at error.
 *
 * A loop of our own rather than cockatiel's `retry(handleWhen(...), { backoff })`: the
 * result must carry the attempt count and an operator hint from the *last* failure's
 * classification, and an abort must end the wait at once with a `ConnectionError`;
 * with cockatiel both need the same bookkeeping wrapped around it, in more lines.
 *
 * @throws ConnectionError with `attempts`, `hint` and the driver error as `cause`, on a
 *   permanent failure (at once), when retries run out, or when `signal` aborts.
 */
export async function connectWithRetry(
  attempt: (n: number) => Promise<void>,
  opts: ConnectRetryOptions,
): Promise<void> {
  const { signal, logger, metrics } = opts;
  for (let n = 1; ; n++) {
    if (signal?.aborted) throw aborted(n - 1, signal);
    try {
      await untilAborted(attempt(n), signal);
      metrics.connectAttempts.inc({ result: 'success' });
      logger.info({ attempt: n }, 'connected to the database');
      return;
    } catch (err) {
      if (signal?.aborted) throw aborted(n, signal);
      const failure = classifyConnectError(err);
      if (!failure.transient || n > opts.maxRetries) {
        metrics.connectAttempts.inc({ result: 'failure' });
        const why = failure.transient ? 'retries exhausted' : 'permanent failure';
        logger.error(
          { attempt: n, reason: failure.reason, hint: failure.hint },
          `database connect failed (${why})`,
        );
        throw new ConnectionError(
          `Could not connect to the database after ${n} attempt${n === 1 ? '' : 's'} (${failure.reason}): ${failure.hint}.`,
          // The pool's acquire already wraps driver errors in ConnectionError; keep the driver's.
          {
            attempts: n,
            hint: failure.hint,
            cause: err instanceof ConnectionError && err.cause ? err.cause : err,
          },
        );
      }
      const delayMs = fullJitterDelay(
        n - 1,
        { baseMs: opts.retryDelayMs, maxMs: opts.maxRetryDelayMs },
        opts.random,
      );
      metrics.connectAttempts.inc({ result: 'retry' });
      logger.warn(
        { attempt: n, reason: failure.reason, hint: failure.hint, delayMs },
        'database connect attempt failed; retrying',
      );
      try {
        await sleep(delayMs, signal);
      } catch {
        throw aborted(n, signal);
      }
    }
  }
}

function aborted(attempts: number, signal: AbortSignal | undefined): ConnectionError {
  return new ConnectionError(`Connecting to the database was aborted after ${attempts} attempt(s).`, {
    attempts,
    hint: 'the caller aborted connect()',
    cause: signal?.reason,
  });
}

/** `promise`, or a rejection as soon as `signal` aborts (the attempt itself runs on). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
