import { performance } from 'node:perf_hooks';
import type { Metrics } from '../../observability/metrics.js';
import type { PoolStats } from '../database.js';
import {
  isBroken,
  isIdleInPool,
  lifetimeLimitOf,
  type DriverConnection,
  type TarnPool,
} from '../knex-internals.js';

/** One checked-out connection, for leak detection. */
export interface PoolHolder {
  /** How long the connection has been checked out, ms. */
  heldMs: number;
  /** Where it was acquired (only when stack capture is on). */
  stack?: string;
}

type Connection = DriverConnection;

/**
 * Keeps the pool statistics that tarn does not: waits, retirements by cause, and who holds
 * each checked-out connection. Fed by tarn's events; re-attached to each new pool when the
 * database re-connects after a close, counters carrying on.
 *
 * Retirement causes, as `PoolStats` reports them:
 * - `maxLifetimeClosed`: knex's pool `validate` found the connection past
 *   `connMaxLifetime` (+ jitter) when it was next acquired; a connection in use is never retired.
 * - `maxIdleTimeClosed`: tarn's reaper closed a connection idle for `connMaxIdleTime`
 *   (it keeps `maxIdleConns` = tarn `min` connections regardless).
 * - `maxIdleClosed`: always 0; tarn has no cap on idle connections (Go's `MaxIdleConns`
 *   closes surplus idle connections on release; tarn's `min` is a floor, not a cap).
 * Broken connections (`__knex__disposed`) dropped by `validate` are not retirements: no counter.
 */
export class PoolMonitor {
  readonly #max: number;
  readonly #captureStacks: boolean;
  readonly #metrics: Metrics;
  #pool: TarnPool | undefined;
  #closing = false;
  #waitCount = 0;
  #waitDurationMs = 0;
  #maxIdleTimeClosed = 0;
  #maxLifetimeClosed = 0;
  readonly #requests = new Map<number, { startedAt: number; waited: boolean; stack?: string }>();
  readonly #holders = new Map<Connection, { since: number; stack?: string }>();

  constructor(opts: { max: number; captureStacks: boolean; metrics: Metrics }) {
    this.#max = opts.max;
    this.#captureStacks = opts.captureStacks;
    this.#metrics = opts.metrics;
  }

  /** Starts watching `pool` (knex's current tarn pool). */
  attach(pool: TarnPool): void {
    this.#pool = pool;
    this.#closing = false;
    pool.on('acquireRequest', (id) => this.#onAcquireRequest(pool, id));
    pool.on('acquireSuccess', (id, conn) => {
      const stack = this.#requests.get(id)?.stack;
      this.#endRequest(id);
      this.#holders.set(conn, { since: performance.now(), ...(stack ? { stack } : {}) });
    });
    pool.on('acquireFail', (id) => this.#endRequest(id));
    pool.on('release', (conn) => this.#holders.delete(conn));
    pool.on('poolDestroyRequest', () => {
      this.#closing = true;
    });
    pool.on('destroyRequest', (_id, conn) => this.#onDestroy(pool, conn));
  }

  /** The pool is gone (closed); stats read zero until the next `attach`. */
  detach(): void {
    this.#pool = undefined;
    this.#holders.clear();
    this.#requests.clear();
  }

  /** Checked-out connections, oldest first. */
  holders(): PoolHolder[] {
    const now = performance.now();
    return [...this.#holders.values()]
      .sort((a, b) => a.since - b.since)
      .map((h) => ({ heldMs: Math.round(now - h.since), ...(h.stack ? { stack: h.stack } : {}) }));
  }

  /** The connections checked out now (to force-close them on `close()`). */
  checkedOut(): Connection[] {
    return [...this.#holders.keys()];
  }

  stats(): PoolStats {
    const pool = this.#pool;
    const inUse = pool?.numUsed() ?? 0;
    const idle = pool?.numFree() ?? 0;
    return {
      maxOpenConnections: this.#max,
      openConnections: inUse + idle,
      inUse,
      idle,
      pendingAcquires: pool?.numPendingAcquires() ?? 0,
      waitCount: this.#waitCount,
      waitDurationMs: Math.round(this.#waitDurationMs),
      maxIdleClosed: 0,
      maxIdleTimeClosed: this.#maxIdleTimeClosed,
      maxLifetimeClosed: this.#maxLifetimeClosed,
    };
  }

  #onAcquireRequest(pool: TarnPool, id: number): void {
    // Fired before tarn queues this acquire. Like Go's sql.DB, an acquire "waits" when no idle
    // connection is left for it and the pool may not open another one.
    const freeForUs = pool.numFree() - pool.numPendingAcquires();
    const open = pool.numUsed() + pool.numFree() + pool.numPendingCreates();
    const waited = freeForUs <= 0 && open >= this.#max;
    const stack = this.#captureStacks ? callerStack() : undefined;
    this.#requests.set(id, { startedAt: performance.now(), waited, ...(stack ? { stack } : {}) });
  }

  #endRequest(id: number): void {
    const req = this.#requests.get(id);
    this.#requests.delete(id);
    if (!req) return;
    const ms = performance.now() - req.startedAt;
    this.#metrics.acquireWait.observe(ms / 1000);
    if (req.waited) {
      this.#waitCount += 1;
      this.#waitDurationMs += ms;
    }
  }

  #onDestroy(pool: TarnPool, conn: Connection): void {
    this.#holders.delete(conn);
    if (this.#closing) return;
    // tarn's reaper destroys straight out of its free list; validation failures are taken
    // out of it first.
    if (isIdleInPool(pool, conn)) this.#maxIdleTimeClosed += 1;
    else if (isBroken(conn))
      return; // broken, not retired by age: counted nowhere
    else {
      const limit = lifetimeLimitOf(conn);
      if (limit && performance.now() > limit) this.#maxLifetimeClosed += 1;
    }
  }
}

/** The acquiring call site, without the frames of this module, tarn and knex's pool. */
function callerStack(): string {
  const lines = (new Error('acquired here').stack ?? '').split('\n');
  return [
    lines[0],
    ...lines.slice(1).filter((l) => !/pool-monitor|tarn[\\/]|knex[\\/]lib[\\/]client/.test(l)),
  ]
    .slice(0, 12)
    .join('\n');
}
