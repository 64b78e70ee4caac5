import { performance } from 'node:perf_hooks';
import knexFactory, { type Knex } from 'knex';
import type { PostgresConfig, TransactionConfig } from '../config/app-config.js';
import { DEFAULTS } from '../config/defaults.js';
import { hidePassword } from '../config/hide-password.js';
import type { Logger } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { tracerOf, type TracingOptions } from '../observability/tracing.js';
import { connectWithRetry } from './connection/connect-with-retry.js';
import { ConnectionGate, type ConnectionHook } from './pool/connection-gate.js';
import type { BreakerState, Database, HealthReport, PoolStats, TxOptions } from './database.js';
import { knexConfig, reapIntervalMs } from './pool/knex-config.js';
import { PgConnectionOpener } from './connection/pg-connection-opener.js';
import { PoolExhaustedError } from './errors/errors.js';
import {
  isBroken,
  onQueryAcquireFailure,
  setConnectionOpener,
  tarnPoolOf,
  type DriverConnection,
} from './knex-internals.js';
import { ConnectionCleaner } from './pool/connection-cleaner.js';
import { LeakDetector } from './pool/leak-detector.js';
import { PoolResizer, type PoolSize } from './pool/pool-resizer.js';
import { PoolMonitor } from './pool/pool-monitor.js';
import { destroyPool, drainPool } from './pool/pool-shutdown.js';
import { probeServer } from './connection/server-probe.js';
import { attachQueryLogger, type QueryLogConfig } from './query-logger.js';
import { attachQueryTracer } from './query-tracer.js';
import { dbSpanAttributes } from './span-attributes.js';
import { TxManager } from './tx/tx-manager.js';
import { TX_RESOURCES, type TxResources } from './tx/tx-resources.js';
import { ReplicaRouter } from './replicas/replica-router.js';

/** Optional collaborators of `PostgresDatabase`. */
export interface PostgresDatabaseOptions {
  /** Where counters go; a private `Metrics` when absent. */
  metrics?: Metrics;
  /** Defaults of the transaction manager (retry attempts, delays, timeout). */
  transactions?: TransactionConfig;
  /** Whose state `health()` reports; 'closed' when absent. */
  breaker?: { readonly state: BreakerState };
  /**
   * Record the acquiring stack of every checkout, for `PoolExhaustedError.holders`, without the
   * held-too-long warning (`leakDetectionThreshold` > 0 records them too). Costs a stack
   * capture per acquire. Default false.
   */
  captureAcquireStacks?: boolean;
  /**
   * After the first successful `connect()`, warn once when the connected role is a superuser
   * (it can run DDL and bypasses every privilege: use a DML-only role, see docs/migrations.md).
   * One extra query at that connect. Default false; the service turns it on outside the test profile.
   */
  warnIfSuperuser?: boolean;
  /**
   * OpenTelemetry spans (docs/observability.md): one per outermost transaction (`TxManager`),
   * per pool checkout and per statement (unless `statements: false`), after the database
   * semantic conventions, never with a bind value. `true`: the global tracer provider's
   * (the application's SDK). Default off: no OpenTelemetry call at all.
   */
  tracing?: boolean | TracingOptions;
  /**
   * Statement logging and timing (`attachQueryLogger`): a `debug` line per statement, a `warn`
   * line for one slower than `slowQueryThreshold` ms, no bind values unless `queryBindings`,
   * and `db_query_duration_seconds` in `metrics`. `context()` adds fields to every line (the
   * service passes the HTTP request's id). Default on, with `slowQueryThreshold` 1000 ms and
   * `queryBindings` false (pass `config.log` to follow the configuration); `false`: none.
   */
  queryLog?: false | (Partial<QueryLogConfig> & { context?: () => Record<string, unknown> | undefined });
}

/** Statement logging when `queryLog` leaves a setting out: the configuration's defaults. */
const QUERY_LOG_DEFAULTS: QueryLogConfig = {
  queryBindings: DEFAULTS.log.queryBindings,
  slowQueryThreshold: DEFAULTS.log.slowQueryThreshold,
};

/**
 * The `Database` on knex + pg; knex owns the pool (tarn). See docs/database.md
 * for how each config key maps onto knex, tarn and pg.
 *
 * Lifecycle: the pool exists from construction and accepts work at once; `connect()` proves
 * it (with retries). `disconnect()` refuses new work, drains, then closes; `close()` closes
 * now. After either, `connect()` opens a new pool. Transactions are TxManager's: `beginTx`
 * and `withTransaction` delegate to it.
 *
 * ```ts
 * const db = new PostgresDatabase(config.database.postgres, logger, { metrics });
 * await db.connect(AbortSignal.timeout(30_000));
 * const rows = await db.driver()('users').select('id');
 * await db.disconnect();
 * ```
 */
export class PostgresDatabase implements Database {
  readonly #cfg: Readonly<PostgresConfig>;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #breaker: { readonly state: BreakerState } | undefined;
  readonly #knex: Knex;
  readonly #opener: PgConnectionOpener;
  readonly #monitor: PoolMonitor;
  readonly #gate: ConnectionGate;
  readonly #tx: TxManager;
  readonly #cleaner: ConnectionCleaner;
  readonly #resizer: PoolResizer;
  readonly #leaks: LeakDetector | undefined;
  /** With `replicas` configured: their pools, states and routing. */
  readonly #replicas: ReplicaRouter | undefined;
  #superuserChecked: boolean;
  #pooled = true;
  #connecting: Promise<void> | undefined;
  #shutdown: Promise<void> | undefined;
  #drainAbort: AbortController | undefined;

  /**
   * Creates the pool (no connection is opened yet: `connect()` proves it). Keeps a frozen copy
   * of `cfg` with the password hidden.
   */
  constructor(cfg: PostgresConfig, logger: Logger, options: PostgresDatabaseOptions = {}) {
    this.#cfg = redactedCopy(cfg);
    this.#logger = logger.child({ component: 'database' });
    this.#metrics = options.metrics ?? new Metrics();
    this.#breaker = options.breaker;
    this.#opener = new PgConnectionOpener(this.#cfg, this.#logger, {
      onBroken: () => this.#metrics.errors.inc({ class: 'connection' }),
    });
    // A connection released over a shrunk size is refused when tarn would hand it out again.
    const validate = (c: unknown): boolean =>
      isQueryable(c) && !this.#resizer.isRetiring(c as DriverConnection);
    this.#knex = knexFactory(knexConfig(this.#cfg, validate, this.#logger));
    // Every pool connection is opened by our opener (TLS mode, deadline, error listener).
    setConnectionOpener(this.#knex, () => this.#opener.open());
    const max = Math.max(1, this.#cfg.maxOpenConns);
    const maxIdle = Math.min(Math.max(0, this.#cfg.maxIdleConns), max);
    const leakMs = this.#cfg.leakDetectionThreshold ?? 0;
    this.#monitor = new PoolMonitor({
      max,
      captureStacks: (options.captureAcquireStacks ?? false) || leakMs > 0,
      metrics: this.#metrics,
    });
    this.#leaks =
      leakMs > 0
        ? new LeakDetector({ thresholdMs: leakMs, monitor: this.#monitor, logger: this.#logger })
        : undefined;
    // Go's idle rules (maxIdleConns as a cap, connMaxIdleTime, connMaxLifetime for idle connections).
    this.#cleaner = new ConnectionCleaner(this.#knex, {
      maxIdle,
      maxIdleTimeMs: this.#cfg.connMaxIdleTime,
      lifetime: this.#cfg.connMaxLifetime > 0,
      intervalMs: reapIntervalMs(this.#cfg.connMaxIdleTime, this.#cfg.connMaxLifetime),
      onClose: (connection, cause) => this.#monitor.closing(connection, cause),
    });
    this.#resizer = new PoolResizer(this.#knex, { maxOpenConns: max, maxIdleConns: maxIdle });
    // knex puts a timed-out query's SQL on its own timeout error; keep it on the one that replaces it.
    onQueryAcquireFailure(this.#knex, (err, query) => {
      if (err instanceof PoolExhaustedError) err.attachQuery(query());
    });
    if (options.queryLog !== false) {
      const { context, ...settings } = options.queryLog ?? {};
      attachQueryLogger(this.#knex, logger, { ...QUERY_LOG_DEFAULTS, ...settings }, this.#metrics, context);
    }
    this.#superuserChecked = !(options.warnIfSuperuser ?? false);
    this.#attachPool();
    // Tracing off: the gate and knex get no tracer and no listener, so nothing on their paths changes.
    const tracer = tracerOf(options.tracing);
    const spans = tracer && { tracer, attributes: dbSpanAttributes(this.#knex) };
    this.#gate = new ConnectionGate(this.#knex, {
      monitor: this.#monitor,
      metrics: this.#metrics,
      max,
      tracing: spans,
    });
    if (spans && (typeof options.tracing !== 'object' || options.tracing.statements !== false))
      attachQueryTracer(this.#knex, spans.tracer, spans.attributes);
    this.#gate.setOpen(true);
    this.#metrics.observePool(() => this.getConnectionStats());
    this.#replicas =
      (this.#cfg.replicas?.length ?? 0) > 0
        ? new ReplicaRouter(this.#cfg, {
            logger: this.#logger,
            metrics: this.#metrics,
            primary: () => this.#knex,
          })
        : undefined;
    // Lent to every TxManager built on this database, this one's included: one set of
    // replicas (and commit positions), counters and spans.
    const resources: TxResources = {
      metrics: this.#metrics,
      replicas: this.#replicas,
      tracing: tracer ? { tracer } : undefined,
      severalHosts: (this.#cfg.hosts?.length ?? 0) > 1,
    };
    Object.defineProperty(this, TX_RESOURCES, { value: resources });
    // Transactions have one implementation: TxManager. The database delegates to it.
    this.#tx = new TxManager(
      this,
      this.#logger,
      options.transactions ? { transactions: options.transactions } : {},
    );
  }

  /** The configuration in use; `password` is non-enumerable, so printing or serialising it never shows it. */
  get config(): Readonly<PostgresConfig> {
    return this.#cfg;
  }

  /** The metrics this database (and its TxManager) update. */
  get metrics(): Metrics {
    return this.#metrics;
  }

  /**
   * The transaction manager behind `withTransaction`/`beginTx`, for its other methods
   * (`withReadOnlyTransaction`, `withTimeout`, `current`). Use it rather than a second
   * `new TxManager(db, ...)`, so there is one set of defaults, one guard and one set of counters.
   */
  get txManager(): TxManager {
    return this.#tx;
  }

  /**
   * Opens the pool if `close()`/`disconnect()` closed it, then proves it with `select 1`,
   * retrying transient failures (connection refused/reset, timeouts, DNS, 57P03, 53300) up to
   * `maxRetries` times with exponential backoff and full jitter (`retryDelay`, capped by
   * `maxRetryDelay`). Permanent failures (authentication, unknown database, TLS) fail at once.
   * A failed connect is not remembered: the next call tries afresh (prisma#19182).
   * Concurrent calls share one attempt loop.
   *
   * @throws ConnectionError with `attempts`, `hint` and the driver error as `cause` (never the
   *   password), also when `signal` aborts.
   */
  connect(signal?: AbortSignal): Promise<void> {
    this.#connecting ??= this.#connect(signal).finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #connect(signal: AbortSignal | undefined): Promise<void> {
    if (this.#shutdown) await this.#shutdown;
    if (!this.#pooled) {
      this.#knex.initialize();
      this.#attachPool();
      this.#replicas?.reopen();
      this.#pooled = true;
    }
    this.#gate.setOpen(true);
    await connectWithRetry(
      async () => {
        await this.#knex.raw('select 1');
      },
      {
        maxRetries: this.#cfg.maxRetries,
        retryDelayMs: this.#cfg.retryDelay,
        maxRetryDelayMs: this.#cfg.maxRetryDelay,
        signal,
        logger: this.#logger,
        metrics: this.#metrics,
      },
    );
    if (!this.#superuserChecked) await this.#warnIfSuperuser();
  }

  /** Once per database: a superuser can run DDL and bypasses every privilege (the development default connects as one). */
  async #warnIfSuperuser(): Promise<void> {
    this.#superuserChecked = true;
    try {
      const { rows } = await this.#knex.raw<{ rows: Array<{ role: string; superuser: boolean }> }>(
        'select current_user as role, rolsuper as superuser from pg_roles where rolname = current_user',
      );
      if (rows[0]?.superuser)
        this.#logger.warn(
          { role: rows[0].role },
          'connected as a superuser, which can run DDL and bypasses every privilege: run the service as a DML-only role (docs/migrations.md)',
        );
    } catch (err) {
      this.#logger.debug({ err }, 'could not check whether the role is a superuser');
    }
  }

  /**
   * Graceful close: new work (driver queries, transactions) is refused with
   * `DatabaseClosedError` at once; in-flight work, including acquires already waiting, may
   * finish for up to `drainTimeout` ms; then the pool closes. Work still running then is cut
   * off (its connections are closed). Idempotent; concurrent calls share one shutdown.
   */
  disconnect(): Promise<void> {
    return this.#close(this.#cfg.drainTimeout);
  }

  /** Immediate close: refuses new work and closes every connection, in use or not. Idempotent; also cuts short a running `disconnect()`. */
  close(): Promise<void> {
    this.#drainAbort?.abort();
    return this.#close(0);
  }

  #close(drainMs: number): Promise<void> {
    if (this.#shutdown) return this.#shutdown;
    if (!this.#pooled) return Promise.resolve();
    this.#gate.setOpen(false);
    const abort = (this.#drainAbort = new AbortController());
    this.#shutdown = (async () => {
      this.#logger.info({ drainMs, inUse: this.#monitor.stats().inUse }, 'database closing');
      const drained = drainMs > 0 ? await drainPool(this.#knex, drainMs, abort.signal, this.#logger) : false;
      await destroyPool({
        knex: this.#knex,
        monitor: this.#monitor,
        force: !drained,
        timeoutMs: this.#cfg.timeout,
        logger: this.#logger,
      });
      await this.#replicas?.close();
      this.#logger.info('database closed');
    })().finally(() => {
      this.#pooled = false;
      this.#shutdown = undefined;
      this.#drainAbort = undefined;
    });
    return this.#shutdown;
  }

  /**
   * Checks the server on a dedicated short-lived connection (works while the pool is
   * exhausted): `select 1`, `version()` and `pg_is_in_recovery()` in one round trip, bounded
   * by `healthCheckTimeout`. Never throws. Reports 'down' while the database is closing or closed.
   * With replicas, each one is checked too (state, replay position, lag) and listed in `replicas`;
   * a replica's state does not change `status`.
   */
  async health(): Promise<HealthReport> {
    const started = performance.now();
    const [result, replicas] = await Promise.all([
      this.#gate.isOpen
        ? probeServer(this.#opener, this.#cfg.healthCheckTimeout)
        : Promise.resolve({ ok: false, error: 'the database is closing or closed' } as const),
      this.#gate.isOpen ? this.#replicas?.check() : this.#replicas?.health(),
    ]);
    const latencyMs = Math.round((performance.now() - started) * 100) / 100;
    const status = result.ok ? 'up' : 'down';
    this.#metrics.healthLatency.observe({ status }, latencyMs / 1000);
    this.#metrics.up.set(result.ok ? 1 : 0);
    return {
      status,
      latencyMs,
      checkedAt: new Date().toISOString(),
      ...(result.ok
        ? { server: { version: result.version, inRecovery: result.inRecovery } }
        : { error: result.error }),
      pool: this.getConnectionStats(),
      breaker: this.#breaker?.state ?? 'closed',
      ...(replicas ? { replicas } : {}),
    };
  }

  /** See `TxManager.beginTx`: explicit style, no retry; the handle's `commit()` rejects when COMMIT fails. */
  beginTx(opts?: TxOptions): Promise<Knex.Transaction> {
    return this.#tx.beginTx(opts);
  }

  /** See `TxManager.withTransaction`: the callback may run more than once (retry of transient failures). */
  withTransaction<T>(fn: (trx: Knex.Transaction) => Promise<T>, opts?: TxOptions): Promise<T> {
    return this.#tx.withTransaction(fn, opts);
  }

  /** The knex instance. Its queries pass the same gate (refused once closing) and pool statistics. */
  driver(): Knex {
    return this.#knex;
  }

  /** Pool statistics from tarn and its events; zeros (counters kept) while closed. See `PoolMonitor` for the counters' meanings. */
  getConnectionStats(): PoolStats {
    return this.#monitor.stats();
  }

  /**
   * Changes the pool size while it runs (no restart; HikariCP and Go's `SetMaxOpenConns` do the
   * same), never closing a connection in use. Growing takes effect at once: acquires already
   * waiting get a connection (new ones are opened for them). Shrinking closes idle connections
   * beyond the new size at once (least recently used first) and each busy one when it is
   * released while more are open than the size allows (it goes neither back to the pool nor
   * to a waiter); `maxIdleConns` is enforced at once on the idle ones. Only `maxOpenConns`
   * given: `maxIdleConns` follows it down when it is larger. `getConnectionStats()` and the
   * pool gauges report the new size at once. Kept across `close()` and `connect()`; the
   * configuration object (`config`) keeps its start-up values. Replica pools are not resized.
   *
   * ```ts
   * db.resizePool({ maxOpenConns: 40, maxIdleConns: 10 });
   * ```
   * @throws ConfigError naming each invalid value (not a whole number, `maxOpenConns` < 1,
   *   `maxIdleConns` < 0 or above `maxOpenConns`); nothing changes then.
   */
  resizePool(opts: PoolSize): void {
    const before = this.#resizer.size;
    const size = this.#resizer.resize(opts);
    this.#gate.setMax(size.maxOpenConns);
    this.#monitor.setMax(size.maxOpenConns);
    this.#cleaner.setMaxIdle(size.maxIdleConns);
    this.#logger.info({ before, after: size }, 'pool resized');
  }

  /**
   * Adds a per-connection hook run at every checkout and return (the
   * foreign-connection guard and per-connection deadlines plug in here).
   * @returns the hook's removal.
   */
  addConnectionHook(hook: ConnectionHook): () => void {
    return this.#gate.addHook(hook);
  }

  #attachPool(): void {
    const pool = tarnPoolOf(this.#knex);
    if (!pool) return;
    this.#resizer.attach(pool);
    this.#monitor.attach(pool);
    this.#cleaner.attach(pool);
    this.#leaks?.attach(pool);
  }
}

/** knex's pool `validate` hook: knex itself drops disposed and over-lifetime connections first. */
function isQueryable(connection: unknown): boolean {
  return !isBroken(connection as DriverConnection);
}

/** A frozen copy whose `password` is hidden (kept out of inspect and JSON, as pg-pool does). */
function redactedCopy(cfg: PostgresConfig): Readonly<PostgresConfig> {
  const { password, ...rest } = cfg;
  return Object.freeze(hidePassword(rest, password));
}
