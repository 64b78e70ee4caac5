/**
 * A counting limit without a queue: `tryAcquire()` takes a slot or says no at once, so a caller
 * over the limit is refused (503 + `Retry-After`) instead of waiting while it holds a socket.
 */
export class ConcurrencyLimit {
  readonly max: number;
  #active = 0;

  /** @param max slots, at least 1. */
  constructor(max: number) {
    this.max = Math.max(1, max);
  }

  /** Slots taken now. */
  get active(): number {
    return this.#active;
  }

  /** Takes a slot: the returned function gives it back (idempotent); undefined when all are taken. */
  tryAcquire(): (() => void) | undefined {
    if (this.#active >= this.max) return undefined;
    this.#active += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#active -= 1;
    };
  }
}
