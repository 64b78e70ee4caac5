import type { Knex } from 'knex';
import { ConfigError } from '../../config/config-error.js';
import {
  closeIdleConnections,
  idleConnectionsOf,
  isIdleInPool,
  poolMaxOf,
  setPoolMax,
  wrapPoolAccess,
  type DriverConnection,
  type TarnPool,
} from '../knex-internals.js';

/** A new pool size: either key, or both; the other keeps its value. */
export interface PoolSize {
  /** Most connections open at once (`database.postgres.maxOpenConns`), >= 1. */
  maxOpenConns?: number;
  /** Most connections kept idle (`database.postgres.maxIdleConns`), 0..maxOpenConns. */
  maxIdleConns?: number;
}

/** The size in force after a resize. */
export type ResolvedPoolSize = Required<PoolSize>;

/**
 * Changes the size of a running tarn pool (HikariCP's and Go's `SetMaxOpenConns` at run time),
 * never touching a connection in use:
 * - growing: tarn's `max` rises and acquires already waiting are served at once (new
 *   connections are opened for them);
 * - shrinking: idle connections beyond the new size are closed at once (least recently used
 *   first); a busy one is closed when it is released while more connections are open than
 *   the size allows, instead of going back to the pool or to a waiter. A connection released
 *   while tarn hands it to a waiter is refused by the pool's `validate` (`isRetiring`), so
 *   tarn closes it and the waiter waits for a connection within the size.
 * Kept across a close and re-connect: `attach` applies the current size to each new pool.
 */
export class PoolResizer {
  #size: ResolvedPoolSize;
  #pool: TarnPool | undefined;
  readonly #retiring = new WeakSet<DriverConnection>();

  /** Wraps knex's release (every return passes here). */
  constructor(knex: Knex, size: ResolvedPoolSize) {
    this.#size = { ...size };
    wrapPoolAccess(knex, ({ release }) => ({
      release: (connection: unknown) => {
        const conn = connection as DriverConnection;
        const pool = this.#pool;
        // Counted before the release, while this connection is still in use: creates under
        // way count, they become connections.
        if (pool && openCount(pool) > this.#size.maxOpenConns) this.#retiring.add(conn);
        const released = release(connection);
        // knex's release returns it to tarn synchronously: idle now means no waiter took it.
        if (pool && this.#retiring.has(conn) && isIdleInPool(pool, conn))
          closeIdleConnections(pool, new Set([conn]));
        return released;
      },
    }));
  }

  /** The size in force. */
  get size(): ResolvedPoolSize {
    return { ...this.#size };
  }

  /** Applies the current size to `pool` (knex's current tarn pool, after each (re)initialisation). */
  attach(pool: TarnPool): void {
    this.#pool = pool;
    setPoolMax(pool, this.#size.maxOpenConns);
  }

  /** True for a connection released over the size: the pool's `validate` refuses it (tarn then closes it). */
  isRetiring(connection: DriverConnection): boolean {
    return this.#retiring.has(connection);
  }

  /**
   * Validates and applies a new size (see the class).
   * @returns the size now in force.
   * @throws ConfigError naming each invalid value (not a whole number, maxOpenConns < 1,
   *   maxIdleConns < 0 or above maxOpenConns); nothing is changed then.
   */
  resize(next: PoolSize): ResolvedPoolSize {
    const size = resolveSize(this.#size, next);
    this.#size = size;
    const pool = this.#pool;
    if (!pool) return { ...size };
    if (size.maxOpenConns > poolMaxOf(pool)) setPoolMax(pool, size.maxOpenConns);
    else {
      setPoolMax(pool, size.maxOpenConns);
      // Idle connections beyond the new size go now; the least recently used come first.
      const surplus = openCount(pool) - size.maxOpenConns;
      const idle = idleConnectionsOf(pool).slice(0, Math.max(0, surplus));
      closeIdleConnections(pool, new Set(idle.map((i) => i.connection)));
    }
    return { ...size };
  }
}

/** Connections open or being opened. */
function openCount(pool: TarnPool): number {
  return pool.numUsed() + pool.numFree() + pool.numPendingCreates();
}

function resolveSize(current: ResolvedPoolSize, next: PoolSize): ResolvedPoolSize {
  const issues: string[] = [];
  if (typeof next !== 'object' || next === null)
    throw new ConfigError(['resizePool needs { maxOpenConns?, maxIdleConns? }.']);
  const check = (key: keyof PoolSize, min: number): void => {
    const value = next[key];
    if (value === undefined) return;
    if (!Number.isSafeInteger(value) || value < min)
      issues.push(`${key} must be a whole number >= ${min} (got ${String(value)}).`);
  };
  check('maxOpenConns', 1);
  check('maxIdleConns', 0);
  const size = {
    maxOpenConns: next.maxOpenConns ?? current.maxOpenConns,
    // Only maxOpenConns given: maxIdleConns follows it down (Go's SetMaxOpenConns does the same).
    maxIdleConns:
      next.maxIdleConns ?? Math.min(current.maxIdleConns, next.maxOpenConns ?? current.maxOpenConns),
  };
  if (issues.length === 0 && size.maxIdleConns > size.maxOpenConns)
    issues.push(`maxIdleConns (${size.maxIdleConns}) must not exceed maxOpenConns (${size.maxOpenConns}).`);
  if (issues.length > 0) throw new ConfigError(issues.map((issue) => `resizePool: ${issue}`));
  return size;
}
