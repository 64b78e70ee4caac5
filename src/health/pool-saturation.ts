import { performance } from 'node:perf_hooks';
import type { PoolStats } from '../db/index.js';

/**
 * Watches whether the pool is saturated: every connection in use (`inUse >= maxOpenConnections`)
 * and acquires waiting (`pendingAcquires > 0`), and since when. Readiness uses it so that a
 * balancer stops sending while the pool cannot serve anyone new (the issue this guards: slow
 * imports holding every connection while `/readyz` said 200).
 *
 * Sampled every quarter of the threshold (50 ms..1 s) by an `unref()`ed timer, started by the
 * first `saturatedForMs()` call and ended by `stop()`; a sample that finds the pool not
 * saturated resets the clock, so readiness recovers at the next probe once the pool does.
 * Between two samples the pool is assumed to have stayed as it was.
 */
export class PoolSaturation {
  readonly #stats: () => PoolStats;
  readonly #sampleMs: number;
  #since: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  /** @param thresholdMs the saturation that matters, ms (sets the sampling period). */
  constructor(stats: () => PoolStats, thresholdMs: number) {
    this.#stats = stats;
    this.#sampleMs = Math.min(1_000, Math.max(50, Math.floor(thresholdMs / 4)));
  }

  /** How long the pool has been saturated, ms; 0 when it is not (sampled now too). */
  saturatedForMs(): number {
    if (!this.#timer && !this.#stopped) {
      this.#timer = setInterval(() => this.#sample(), this.#sampleMs);
      this.#timer.unref();
    }
    const now = this.#sample();
    return this.#since === undefined ? 0 : now - this.#since;
  }

  /** Stops sampling for good (shutdown). */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #sample(): number {
    const now = performance.now();
    if (isSaturated(this.#stats())) this.#since ??= now;
    else this.#since = undefined;
    return now;
  }
}

/** Every connection in use and someone waiting for one. */
export function isSaturated(stats: PoolStats): boolean {
  return stats.maxOpenConnections > 0 && stats.inUse >= stats.maxOpenConnections && stats.pendingAcquires > 0;
}
