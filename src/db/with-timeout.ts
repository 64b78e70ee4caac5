/** The rejection of `withTimeout` when `p` did not settle in time (the work itself may still finish). */
export class TimeoutExpiredError extends Error {
  constructor(ms: number) {
    super(`no answer within ${Math.round(ms)} ms`);
    this.name = 'TimeoutExpiredError';
  }
}

/**
 * Settles with `p`, or rejects after `ms` (the work itself goes on); a value arriving later
 * goes to `onLate` (e.g. to close a late connection).
 */
export function withTimeout<T>(p: Promise<T>, ms: number, onLate?: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let late = false;
    const timer = setTimeout(
      () => {
        late = true;
        reject(new TimeoutExpiredError(ms));
      },
      Math.max(0, ms),
    );
    p.then(
      (v) => {
        clearTimeout(timer);
        if (late) onLate?.(v);
        else resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        if (!late) reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
