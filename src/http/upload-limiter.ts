import { performance } from 'node:perf_hooks';
import { ImportTooLargeError, RequestTimeoutError } from './request-errors.js';

/** The bounds of one streamed upload (`server.import.*` and `server.bodyTimeout`), ms unless noted. */
export interface UploadLimits {
  /** `performance.now()` by which the whole body must have arrived; Infinity = no deadline. */
  deadlineAt: number;
  /** The configured deadline, for the error message, ms. */
  deadlineMs: number;
  /** Longest wait for one chunk, ms; 0 = none. */
  gapMs: number;
  /** Slowest accepted rate, bytes per second of time spent waiting for the client; 0 = none. */
  minBytesPerSecond: number;
  /** Waiting time before the minimum rate applies, ms. */
  graceMs: number;
  /** Most bytes the whole body may have; 0 or absent = no cap. */
  maxBytes?: number;
  /**
   * The bytes the minimum rate credits, read before each wait: the import passes the bytes that
   * became rows (`ImportProgress`), so blank lines and whitespace buy no time. Absent: every
   * byte received counts.
   */
  countedBytes?: () => number;
}

/**
 * Passes the chunks of `source` through, and throws `RequestTimeoutError` as soon as the
 * upload breaks a bound: the deadline, the longest gap between chunks, or the minimum rate.
 * Throws `ImportTooLargeError('maxBytes')` on the chunk that takes the body past `maxBytes`.
 *
 * The rate counts only time spent *waiting for the client* (inside `next()` of the source):
 * while the consumer is busy (a COPY waiting on the database's backpressure) the client cannot
 * send, and that is not its fault. Kestrel's `MinRequestBodyDataRate` works the same way
 * (it pauses the rate timer while the application is not reading). A wait is bounded at the
 * moment it starts: by the deadline left, the gap, and the time until the bytes received so
 * far stop covering the minimum rate (`max(grace, bytes / rate) - waited`).
 *
 * On a timeout the pending read is abandoned, not awaited (a stalled client may never answer
 * it): the caller answers and then closes the connection, which ends that read.
 */
export async function* limitUpload(
  source: AsyncIterable<Buffer>,
  limits: UploadLimits,
  now: () => number = () => performance.now(),
): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]();
  let waitedMs = 0;
  let bytes = 0;
  for (;;) {
    const started = now();
    // The tightest bound on this wait, and the error it gives (built only when it fires).
    let allowed = limits.deadlineAt - started;
    let broken = (): RequestTimeoutError => new RequestTimeoutError('import-deadline', limits.deadlineMs);
    if (limits.gapMs > 0 && limits.gapMs < allowed) {
      allowed = limits.gapMs;
      broken = () => new RequestTimeoutError('body-gap', limits.gapMs);
    }
    if (limits.minBytesPerSecond > 0) {
      const credited = limits.countedBytes ? limits.countedBytes() : bytes;
      const covered = Math.max(limits.graceMs, (credited / limits.minBytesPerSecond) * 1000) - waitedMs;
      if (covered < allowed) {
        allowed = covered;
        broken = () => new RequestTimeoutError('import-rate', limits.minBytesPerSecond);
      }
    }
    if (allowed <= 0) throw broken();
    const next = await withTimeout(it.next(), allowed, broken);
    waitedMs += now() - started;
    if (next.done) return;
    bytes += next.value.length;
    if (limits.maxBytes && bytes > limits.maxBytes)
      throw new ImportTooLargeError('maxBytes', limits.maxBytes);
    yield next.value;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, error: () => Error): Promise<T> {
  if (!Number.isFinite(ms)) return promise;
  let timer: NodeJS.Timeout | undefined;
  const expiry = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(error()), Math.ceil(ms));
  });
  // Promise.race subscribes to `promise`, so a later rejection of the abandoned read is handled.
  return Promise.race([promise, expiry]).finally(() => clearTimeout(timer));
}
