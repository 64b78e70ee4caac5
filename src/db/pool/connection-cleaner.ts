import { performance } from 'node:perf_hooks';
import type { Knex } from 'knex';
import {
  closeIdleConnections,
  idleConnectionsOf,
  isIdleInPool,
  lifetimeLimitOf,
  wrapPoolAccess,
  type DriverConnection,
  type TarnPool,
} from '../knex-internals.js';
import type { CloseCause } from './pool-monitor.js';

/** What the cleaner enforces; 0 turns a time limit off. */
export interface CleanerSettings {
  /** Most idle connections kept (Go's `MaxIdleConns`); 0 keeps none. */
  maxIdle: number;
  /** Close a connection idle this long, ms (Go's `ConnMaxIdleTime`); 0 = never. */
  maxIdleTimeMs: number;
  /** Close idle connections past their lifetime (knex's `__knexLifetimeLimit`, `connMaxLifetime` + jitter). */
  lifetime: boolean;
  /** How often idle connections are looked at, ms. */
  intervalMs: number;
  /** Called just before a connection is closed, with why (the monitor counts it). */
  onClose: (connection: DriverConnection, cause: CloseCause) => void;
}

/**
 * Go's `database/sql` idle-connection rules on tarn's pool (Go calls this part the connection
 * cleaner): at most `maxIdle` connections stay idle, a connection idle for `maxIdleTimeMs` is
 * closed, and an idle connection past its lifetime is closed without waiting for its next
 * acquire. tarn's own reaper is off (`knexConfig`); tarn's `min` is 0, so there is no floor.
 *
 * - On release: when the pool then holds more than `maxIdle` idle connections, the least
 *   recently used ones are closed (Go closes the surplus on release too); a released connection
 *   past its lifetime is closed at once. A waiting acquire gets the connection first (tarn
 *   hands it over inside its release), so a busy pool does not churn.
 * - Every `intervalMs` (an unref'ed timer: it never keeps the process alive), the same rules
 *   for every idle connection: lifetime first, then idle time, then the cap.
 * Connections in use are never touched. Stops by itself when the pool is destroyed.
 */
export class ConnectionCleaner {
  readonly #settings: CleanerSettings;
  #pool: TarnPool | undefined;
  #timer: NodeJS.Timeout | undefined;

  /** Wraps knex's release (every return passes here, after the gate's hooks). */
  constructor(knex: Knex, settings: CleanerSettings) {
    this.#settings = { ...settings };
    wrapPoolAccess(knex, ({ release }) => ({
      release: (connection: unknown) => {
        // knex's release returns the connection to tarn synchronously; the promise is only its answer.
        const released = release(connection);
        this.#afterRelease(connection as DriverConnection);
        return released;
      },
    }));
  }

  /** A new `maxIdle` (a pool resize): idle connections beyond it are closed now. */
  setMaxIdle(maxIdle: number): void {
    this.#settings.maxIdle = maxIdle;
    this.clean();
  }

  /** Starts cleaning `pool` (knex's current tarn pool). */
  attach(pool: TarnPool): void {
    this.detach();
    this.#pool = pool;
    pool.on('poolDestroyRequest', () => {
      if (this.#pool === pool) this.detach();
    });
    this.#timer = setInterval(() => this.clean(), this.#settings.intervalMs);
    this.#timer.unref();
  }

  /** Stops; the pool is being destroyed (tarn closes the idle connections itself then). */
  detach(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#pool = undefined;
  }

  /** One pass over the idle connections: past their lifetime, idle too long, beyond the cap. */
  clean(): void {
    const pool = this.#pool;
    if (!pool || pool.numFree() === 0) return;
    const { maxIdleTimeMs, lifetime } = this.#settings;
    const idle = idleConnectionsOf(pool);
    const nowMs = Date.now(); // tarn's idle timestamps are Date.now()
    const nowPerf = performance.now(); // knex's lifetime limits are performance.now()
    const doomed = new Map<DriverConnection, CloseCause>();
    for (const { connection, idleSince } of idle) {
      if (lifetime && isPastLifetime(connection, nowPerf)) doomed.set(connection, 'maxLifetime');
      else if (maxIdleTimeMs > 0 && nowMs - idleSince >= maxIdleTimeMs) doomed.set(connection, 'maxIdleTime');
    }
    this.#trimSurplus(idle, doomed);
    this.#close(pool, doomed);
  }

  #afterRelease(connection: DriverConnection): void {
    const pool = this.#pool;
    if (!pool) return;
    const expired = this.#settings.lifetime && isPastLifetime(connection, performance.now());
    if (!expired && pool.numFree() <= this.#settings.maxIdle) return;
    const doomed = new Map<DriverConnection, CloseCause>();
    if (expired && isIdleInPool(pool, connection)) doomed.set(connection, 'maxLifetime');
    this.#trimSurplus(idleConnectionsOf(pool), doomed);
    this.#close(pool, doomed);
  }

  /** Adds the least recently used idle connections beyond `maxIdle` to `doomed`. */
  #trimSurplus(
    idle: ReadonlyArray<{ connection: DriverConnection }>,
    doomed: Map<DriverConnection, CloseCause>,
  ): void {
    let surplus = idle.length - doomed.size - this.#settings.maxIdle;
    for (const { connection } of idle) {
      if (surplus <= 0) return;
      if (doomed.has(connection)) continue;
      doomed.set(connection, 'maxIdle');
      surplus -= 1;
    }
  }

  #close(pool: TarnPool, doomed: ReadonlyMap<DriverConnection, CloseCause>): void {
    if (doomed.size === 0) return;
    closeIdleConnections(pool, new Set(doomed.keys()), (connection) => {
      this.#settings.onClose(connection, doomed.get(connection) ?? 'maxIdle');
    });
  }
}

function isPastLifetime(connection: DriverConnection, now: number): boolean {
  const limit = lifetimeLimitOf(connection);
  return typeof limit === 'number' && limit > 0 && now > limit;
}
