import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type { Knex } from 'knex';
import type { Logger } from '../../observability/logger.js';
import { abandonPool, markBroken, tarnPoolOf } from '../knex-internals.js';
import type { PoolMonitor } from './pool-monitor.js';

/** How often a drain looks at the pool, ms. */
const DRAIN_POLL_MS = 10;

/**
 * Waits until nothing is checked out, waiting for a connection or being created (the pool is
 * read afresh each time, as knex may replace it).
 *
 * @returns true once idle; false when `drainMs` ran out or `signal` aborted (logged at warn
 *   with the connections still in use). Never throws.
 */
export async function drainPool(
  knex: Knex,
  drainMs: number,
  signal: AbortSignal,
  logger: Logger,
): Promise<boolean> {
  const until = performance.now() + drainMs;
  for (;;) {
    const pool = tarnPoolOf(knex);
    if (!pool || pool.numUsed() + pool.numPendingAcquires() + pool.numPendingCreates() === 0) return true;
    if (signal.aborted || performance.now() >= until) {
      logger.warn({ inUse: pool.numUsed(), drainMs }, 'drain timeout: closing connections still in use');
      return false;
    }
    await delay(DRAIN_POLL_MS);
  }
}

/**
 * Destroys knex's pool. With `force`, every checked-out connection is ended first (pg's
 * `end()` destroys the socket of a running query, so that query rejects now) and marked
 * disposed so it is never handed out again. tarn's destroy waits for every checked-out
 * connection to come back; after `timeoutMs` (at least 1 s) the pool is abandoned instead
 * (logged at warn), so a callback that never returns cannot hold shutdown forever.
 * The monitor is detached once the pool is gone or abandoned.
 *
 * @throws what knex's `destroy()` rejects with (the monitor then stays attached).
 */
export async function destroyPool(opts: {
  knex: Knex;
  monitor: PoolMonitor;
  force: boolean;
  timeoutMs: number;
  logger: Logger;
}): Promise<void> {
  if (opts.force) {
    for (const conn of opts.monitor.checkedOut()) {
      markBroken(conn, 'closed by PostgresDatabase.close()');
      conn.end().catch(() => {});
    }
  }
  const destroyed = await Promise.race([
    opts.knex.destroy().then(() => true),
    delay(Math.max(1_000, opts.timeoutMs)).then(() => false),
  ]);
  if (!destroyed) {
    opts.logger.warn('the pool did not finish closing in time; abandoning it');
    abandonPool(opts.knex);
  }
  opts.monitor.detach();
}
