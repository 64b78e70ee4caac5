import { performance } from 'node:perf_hooks';

/** Settles never: the expiry of a transaction without a deadline. */
const NEVER: Promise<void> = new Promise<void>(() => {});

/**
 * One deadline for a whole transaction (acquire, setup, statements, COMMIT), on the
 * `performance.now()` clock. Fires `onExpire` once, at the deadline; without one, never.
 * Work is raced against it with `race` (rejects at the deadline, hands a late result to
 * `onLate` so a late connection can be given back).
 *
 * `TxDeadline.NONE` is the shared deadline of every transaction without a timeout: no timer,
 * no promise, no closure per transaction (the common case costs nothing).
 */
export class TxDeadline {
  /** The absence of a deadline: never expires; `race` returns its promise unchanged. */
  static readonly NONE = new TxDeadline(undefined, () => {});

  /** Absolute time, or undefined for none. */
  readonly at: number | undefined;
  readonly #expiry: Promise<void>;
  #timer: NodeJS.Timeout | undefined;
  #expired = false;

  constructor(at: number | undefined, onExpire: () => void) {
    this.at = at;
    if (at === undefined) {
      this.#expiry = NEVER;
      return;
    }
    let fire: () => void = () => {};
    this.#expiry = new Promise((resolve) => (fire = resolve));
    this.#timer = setTimeout(
      () => {
        this.#expired = true;
        onExpire();
        fire();
      },
      Math.max(0, at - performance.now()),
    );
  }

  get expired(): boolean {
    return this.#expired;
  }

  /** Resolves at the deadline; never without one. */
  get expiry(): Promise<void> {
    return this.#expiry;
  }

  /** Milliseconds left (at least 1), or undefined without a deadline. */
  remainingMs(): number | undefined {
    return this.at === undefined ? undefined : Math.max(1, Math.ceil(this.at - performance.now()));
  }

  /** Stops the timer (the transaction is over). */
  clear(): void {
    clearTimeout(this.#timer);
  }

  /** Settles with `p`, or rejects with `timeoutError()` at the deadline; a later value goes to `onLate`. */
  race<T>(p: Promise<T>, timeoutError: () => Error, onLate?: (value: T) => void): Promise<T> {
    if (this.at === undefined) return p;
    return new Promise<T>((resolve, reject) => {
      let lost = false;
      void this.#expiry.then(() => {
        lost = true;
        reject(timeoutError());
      });
      p.then(
        (value) => (lost ? onLate?.(value) : resolve(value)),
        (err: Error) => {
          if (!lost) reject(err);
        },
      );
    });
  }

  /** Like `race`, but `p` may run `graceMs` past the deadline before `timeoutError()` rejects. */
  raceWithGrace<T>(p: Promise<T>, graceMs: number, timeoutError: () => Error): Promise<T> {
    if (this.at === undefined) return p;
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      void this.#expiry.then(() => {
        if (!settled) timer = setTimeout(() => reject(timeoutError()), graceMs);
      });
      p.then(
        (value) => {
          settled = true;
          clearTimeout(timer);
          resolve(value);
        },
        (err: Error) => {
          settled = true;
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }
}
