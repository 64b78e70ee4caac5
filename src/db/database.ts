import type { Knex } from 'knex';
import type { ReplicaHealth } from './replicas/replica-pool.js';

/** Transaction isolation levels, as SQL spells them. */
export const ISOLATION_LEVELS = ['read committed', 'repeatable read', 'serializable'] as const;
/** One of `ISOLATION_LEVELS`. */
export type IsolationLevel = (typeof ISOLATION_LEVELS)[number];

/** How a transaction relates to an ambient one already running in this async call chain. */
export const PROPAGATIONS = ['required', 'nested', 'requiresNew'] as const;
/** One of `PROPAGATIONS`; `required` (join or start) is the default. */
export type Propagation = (typeof PROPAGATIONS)[number];

/** Retry settings of one transaction; `false` runs it once. */
export interface RetryOptions {
  /** Attempts in all, the first included. Default from config (3). */
  maxAttempts?: number;
  /** Base delay of the exponential backoff, ms. */
  baseDelayMs?: number;
  /** Cap on one delay, ms. */
  maxDelayMs?: number;
}

/**
 * Options of one transaction. An empty object means a plain BEGIN with the
 * server's defaults, and retry of transient failures with the configured defaults.
 */
export interface TxOptions {
  /** Default: the server's (`read committed` unless configured otherwise). */
  isolationLevel?: IsolationLevel;
  /** Writes fail with `ReadOnlyTransactionError`. Default false. */
  readOnly?: boolean;
  /** Only with serializable + readOnly. */
  deferrable?: boolean;
  /** Bounds the whole transaction (acquire, statements, COMMIT), ms; default `database.transactions.defaultTimeout` (0 = none). */
  timeoutMs?: number;
  /** `false` runs the callback once; default: retry transient failures with the configured attempts and delays. */
  retry?: false | RetryOptions;
  /** Default 'required'. */
  propagation?: Propagation;
  /** Allows a retry after an unknown COMMIT outcome: the callback's effects may apply twice. */
  idempotent?: boolean;
  /**
   * Where a read-only transaction runs: `primary` (the default) or `replica` (one of
   * `database.postgres.replicas`, once it has replayed every commit this database acknowledged
   * before the read began, and `after`; else the primary). Read-only transactions only.
   */
  target?: TxTarget;
  /**
   * A commit token (`TxManager.lastCommitToken()`, from any process): a replica read runs on a
   * replica only once it has replayed that commit. Read-only transactions only.
   */
  after?: string;
  /**
   * Session settings for this transaction only: each is applied with
   * `set_config(name, value, true)` in the same message as BEGIN (no extra round trip), so
   * row-level-security policies and triggers read them with `current_setting(name)`; they end
   * with the transaction (also behind PgBouncer in transaction mode). Names are setting names
   * (`app.tenant_id`, `search_path`); values are sent as escaped literals. A joining call
   * (`propagation` 'required' or 'nested') applies them to the ambient transaction for its
   * callback's duration and restores the previous values after it. Default: none.
   */
  settings?: Readonly<Record<string, string | number | boolean>>;
}

/** Where a read-only transaction may run. */
export const TX_TARGETS = ['primary', 'replica'] as const;
/** One of `TX_TARGETS`. */
export type TxTarget = (typeof TX_TARGETS)[number];

/** One replica of `database.postgres.replicas` in a health report. */
export type { ReplicaHealth, ReplicaState } from './replicas/replica-pool.js';

/** Pool statistics, after Go's sql.DBStats. */
export interface PoolStats {
  /** Configured pool size. */
  maxOpenConnections: number;
  /** Connections open now (in use + idle). */
  openConnections: number;
  /** Connections checked out now. */
  inUse: number;
  /** Connections open and not checked out now. */
  idle: number;
  /** Acquires waiting for a connection now. */
  pendingAcquires: number;
  /** Acquires that had to wait, since start. */
  waitCount: number;
  /** Total time those acquires waited, ms. */
  waitDurationMs: number;
  /** Connections closed because the pool held more idle ones than maxIdleConns. */
  maxIdleClosed: number;
  /** Connections closed after connMaxIdleTime. */
  maxIdleTimeClosed: number;
  /** Connections retired after connMaxLifetime. */
  maxLifetimeClosed: number;
}

/** Circuit breaker states: `closed` lets work through, `open` fails it fast, `half-open` lets one trial call through. */
export const BREAKER_STATES = ['closed', 'open', 'half-open'] as const;
/** One of `BREAKER_STATES`. */
export type BreakerState = (typeof BREAKER_STATES)[number];

/** The result of one health check. */
export interface HealthReport {
  /** `up` when the server answered the probe in time. */
  status: 'up' | 'down';
  /** How long the check took, ms. */
  latencyMs: number;
  /** ISO-8601 time of the check. */
  checkedAt: string;
  /** Why the check failed; secret-free. */
  error?: string;
  /** The pool at the time of the check. */
  pool: PoolStats;
  /** The circuit breaker's state ('closed' when there is none). */
  breaker: BreakerState;
  /** When up: the short server version ("PostgreSQL 18.4") and whether it is a standby. */
  server?: { version: string; inRecovery: boolean };
  /** With `database.postgres.replicas`: each replica's state and lag, checked with the primary. */
  replicas?: ReplicaHealth[];
}

/**
 * The database layer's port: connection lifecycle, transactions and raw access.
 * `PostgresDatabase` implements it on knex + pg.
 */
export interface Database {
  /** Opens the pool and proves it with a query; retries transient failures with backoff + jitter. */
  connect(signal?: AbortSignal): Promise<void>;
  /** Graceful: refuses new work, drains in-flight work up to the drain timeout, then closes. */
  disconnect(): Promise<void>;
  /** Never throws and never hangs past the health-check timeout. */
  health(): Promise<HealthReport>;
  /** Explicit style; the handle's `commit()` rejects when COMMIT fails. No retry. */
  beginTx(opts?: TxOptions): Promise<Knex.Transaction>;
  /** Runs `fn` in a transaction; the callback may run more than once (retry). */
  withTransaction<T>(fn: (trx: Knex.Transaction) => Promise<T>, opts?: TxOptions): Promise<T>;
  /** Raw access to the knex instance. */
  driver(): Knex;
  /** Pool statistics now (cheap, no I/O). */
  getConnectionStats(): PoolStats;
  /** Immediate; idempotent. */
  close(): Promise<void>;
}
