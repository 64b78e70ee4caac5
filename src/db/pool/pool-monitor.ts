import { performance } from 'node:perf_hooks';
import type { Metrics } from '../../observability/metrics.js';
import type { PoolStats } from '../database.js';
import type { PoolHolderInfo } from '../errors/errors.js';
import { isBroken, lifetimeLimitOf, type DriverConnection, type TarnPool } from '../knex-internals.js';
import { applicationStack, captureAcquireSite } from './acquire-site.js';

/** Why the pool closed a healthy connection (the `PoolStats` counter it goes to). */
export type CloseCause = 'maxIdle' | 'maxIdleTime' | 'maxLifetime';

/** A checked-out connection: since when (performance.now()), and where it was acquired when stacks are captured. */
export interface HeldConnection {
  readonly since: number;
  readonly site?: Error;
}

type Connection = DriverConnection;

/**
 * Keeps the pool statistics that tarn does not: waits, closes by cause, and who holds each
 * checked-out connection. Fed by tarn's events; re-attached to each new pool when the
 * database re-connects after a close, counters carrying on.
 *
 * Close causes, as `PoolStats` reports them (Go's `sql.DBStats` names):
 * - `maxIdleClosed`: the `ConnectionCleaner` closed an idle connection beyond `maxIdleConns`;
 * - `maxIdleTimeClosed`: the cleaner closed a connection idle for `connMaxIdleTime`;
 * - `maxLifetimeClosed`: past `connMaxLifetime` (+ jitter): closed idle by the cleaner, or
 *   dropped by knex's pool `validate` when it was next acquired. A connection in use is never
 *   retired.
 * Broken connections (`__knex__disposed`) dropped by `validate`, and connections evicted after a
 * failover, are not retirements: no counter.
 */
export class PoolMonitor {
  #max: number;
  readonly #captureStacks: boolean;
  readonly #metrics: Metrics;
  #pool: TarnPool | undefined;
  #closing = false;
  #waitCount = 0;
  #waitDurationMs = 0;
  readonly #closed: Record<CloseCause, number> = { maxIdle: 0, maxIdleTime: 0, maxLifetime: 0 };
  /** Connections the cleaner is closing, and why: read when their `destroyRequest` arrives. */
  readonly #closingFor = new WeakMap<Connection, CloseCause>();
  readonly #requests = new Map<number, { startedAt: number; waited: boolean; site?: Error }>();
  readonly #holders = new Map<Connection, HeldConnection>();

  /** @param opts.captureStacks Capture the acquiring stack of every checkout (leak detection). */
  constructor(opts: { max: number; captureStacks: boolean; metrics: Metrics }) {
    this.#max = opts.max;
    this.#captureStacks = opts.captureStacks;
    this.#metrics = opts.metrics;
  }

  /** The pool size now (a resize): `maxOpenConnections`, and whether an acquire waited. */
  setMax(max: number): void {
    this.#max = max;
  }

  /** Starts watching `pool` (knex's current tarn pool). */
  attach(pool: TarnPool): void {
    this.#pool = pool;
    this.#closing = false;
    pool.on('acquireRequest', (id) => this.#onAcquireRequest(pool, id));
    pool.on('acquireSuccess', (id, conn) => {
      const site = this.#requests.get(id)?.site;
      this.#endRequest(id);
      this.#holders.set(conn, site ? { since: performance.now(), site } : { since: performance.now() });
    });
    pool.on('acquireFail', (id) => this.#endRequest(id));
    pool.on('release', (conn) => this.#holders.delete(conn));
    pool.on('poolDestroyRequest', () => {
      this.#closing = true;
    });
    pool.on('destroyRequest', (_id, conn) => this.#onDestroy(conn));
  }

  /** The pool is gone (closed); stats read zero until the next `attach`. */
  detach(): void {
    this.#pool = undefined;
    this.#holders.clear();
    this.#requests.clear();
  }

  /** Checked-out connections, oldest first, with the application frames that acquired each (when captured). */
  holders(): PoolHolderInfo[] {
    const now = performance.now();
    return [...this.#holders.values()]
      .sort((a, b) => a.since - b.since)
      .map((h) => {
        const heldMs = Math.round(now - h.since);
        return h.site ? { heldMs, stack: applicationStack(h.site) } : { heldMs };
      });
  }

  /** Every checked-out connection with when and where it was acquired (for the leak detector). */
  held(): ReadonlyMap<Connection, HeldConnection> {
    return this.#holders;
  }

  /** Tells the monitor that the cleaner is about to close `conn` for `cause` (counted when tarn destroys it). */
  closing(conn: Connection, cause: CloseCause): void {
    this.#closingFor.set(conn, cause);
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
      maxIdleClosed: this.#closed.maxIdle,
      maxIdleTimeClosed: this.#closed.maxIdleTime,
      maxLifetimeClosed: this.#closed.maxLifetime,
    };
  }

  #onAcquireRequest(pool: TarnPool, id: number): void {
    // Fired before tarn queues this acquire. Like Go's sql.DB, an acquire "waits" when no idle
    // connection is left for it and the pool may not open another one.
    const freeForUs = pool.numFree() - pool.numPendingAcquires();
    const open = pool.numUsed() + pool.numFree() + pool.numPendingCreates();
    const waited = freeForUs <= 0 && open >= this.#max;
    const startedAt = performance.now();
    this.#requests.set(
      id,
      this.#captureStacks ? { startedAt, waited, site: captureAcquireSite() } : { startedAt, waited },
    );
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
      this.#metrics.poolWaits.inc();
      this.#metrics.poolWaitSeconds.inc(ms / 1000);
    }
  }

  #onDestroy(conn: Connection): void {
    this.#holders.delete(conn);
    const cause = this.#closingFor.get(conn);
    if (cause) {
      this.#closingFor.delete(conn);
      this.#closed[cause] += 1;
      return;
    }
    // Anything else destroyed while the pool runs was dropped by knex's validate at an acquire
    // (or marked broken and evicted): past its lifetime it is a retirement, broken it is not.
    if (this.#closing || isBroken(conn)) return;
    const limit = lifetimeLimitOf(conn);
    if (limit && performance.now() > limit) this.#closed.maxLifetime += 1;
  }
}
