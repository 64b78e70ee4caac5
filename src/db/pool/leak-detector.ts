import { performance } from 'node:perf_hooks';
import type { Logger } from '../../observability/logger.js';
import type { DriverConnection, TarnPool } from '../knex-internals.js';
import { applicationCaller, applicationStack } from './acquire-site.js';
import type { PoolMonitor } from './pool-monitor.js';

/** How often held connections are looked at: a quarter of the threshold, between 10 ms and 1 s. */
function leakScanIntervalMs(thresholdMs: number): number {
  return Math.min(1_000, Math.max(10, Math.floor(thresholdMs / 4)));
}

/**
 * HikariCP's `leakDetectionThreshold`: a connection checked out for longer than `thresholdMs`
 * is logged once at warn, with how long it has been held and the application frames that
 * acquired it (the monitor captures them at each acquire while this is on); when it comes back,
 * one info line says so. It only reports: the connection is never taken away.
 *
 * Checked every `leakScanIntervalMs(thresholdMs)` by an unref'ed timer, so a report comes
 * between `thresholdMs` and `thresholdMs` + a quarter of it (at most 1 s) after the acquire.
 * Stops by itself when the pool is destroyed.
 */
export class LeakDetector {
  readonly #thresholdMs: number;
  readonly #monitor: PoolMonitor;
  readonly #logger: Logger;
  /** Connections reported as held too long, with when they were acquired. */
  readonly #reported = new Map<DriverConnection, number>();
  #pool: TarnPool | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: { thresholdMs: number; monitor: PoolMonitor; logger: Logger }) {
    this.#thresholdMs = opts.thresholdMs;
    this.#monitor = opts.monitor;
    this.#logger = opts.logger;
  }

  /** Starts watching the connections checked out of `pool`. */
  attach(pool: TarnPool): void {
    this.detach();
    this.#pool = pool;
    pool.on('release', (connection) => this.#returned(connection));
    pool.on('destroyRequest', (_id, connection) => this.#reported.delete(connection));
    pool.on('poolDestroyRequest', () => {
      if (this.#pool === pool) this.detach();
    });
    this.#timer = setInterval(() => this.scan(), leakScanIntervalMs(this.#thresholdMs));
    this.#timer.unref();
  }

  /** Stops watching (the pool is being destroyed). */
  detach(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#pool = undefined;
    this.#reported.clear();
  }

  /** Reports, once each, the connections held for `thresholdMs` or longer. */
  scan(): void {
    const now = performance.now();
    for (const [connection, held] of this.#monitor.held()) {
      const heldMs = now - held.since;
      if (heldMs < this.#thresholdMs || this.#reported.has(connection)) continue;
      this.#reported.set(connection, held.since);
      this.#logger.warn(
        {
          heldMs: Math.round(heldMs),
          leakDetectionThresholdMs: this.#thresholdMs,
          caller: held.site ? applicationCaller(held.site) : undefined,
          stack: held.site ? applicationStack(held.site) : undefined,
        },
        'a pool connection is held longer than leakDetectionThreshold (possible leak)',
      );
    }
  }

  #returned(connection: DriverConnection): void {
    const since = this.#reported.get(connection);
    if (since === undefined) return;
    this.#reported.delete(connection);
    this.#logger.info(
      { heldMs: Math.round(performance.now() - since) },
      'a pool connection reported as held too long was returned',
    );
  }
}
