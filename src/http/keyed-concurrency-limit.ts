/**
 * A counting limit per key without a queue (the per-key twin of `ConcurrencyLimit`):
 * `tryAcquire(key)` takes one of the key's `max` slots or says no at once. Only keys holding
 * a slot are remembered, so memory is bounded by the slots taken, not by the keys ever seen.
 */
export class KeyedConcurrencyLimit {
  readonly max: number;
  readonly #active = new Map<string, number>();

  /** @param max slots per key, at least 1. */
  constructor(max: number) {
    this.max = Math.max(1, max);
  }

  /** Slots `key` holds now. */
  active(key: string): number {
    return this.#active.get(key) ?? 0;
  }

  /** Takes a slot of `key`: the returned function gives it back (idempotent); undefined when the key has none left. */
  tryAcquire(key: string): (() => void) | undefined {
    const held = this.active(key);
    if (held >= this.max) return undefined;
    this.#active.set(key, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.active(key) - 1;
      if (left > 0) this.#active.set(key, left);
      else this.#active.delete(key);
    };
  }
}
