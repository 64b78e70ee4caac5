import type { Knex } from 'knex';

/** Transaction isolation levels, as SQL spells them. */
export const ISOLATION_LEVELS = ['read committed', 'repeatable read', 'serializable'] as const;
export type IsolationLevel = (typeof ISOLATION_LEVELS)[number];

/** How a transaction relates to an ambient one already running in this async call chain. */
export const PROPAGATIONS = ['required', 'nested', 'requiresNew'] as const;
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
  isolationLevel?: IsolationLevel;
  readOnly?: boolean;
  /** Only with serializable + readOnly. */
  deferrable?: boolean;
  /** Bounds the whole transaction (acquire, statements, COMMIT), ms. */
  timeoutMs?: number;
  retry?: false | RetryOptions;
  /** Default 'required'. */
  propagation?: Propagation;
  /** Allows a retry after an unknown COMMIT outcome: the callback's effects may apply twice. */
  idempotent?: boolean;
}

/** Pool statistics, after Go's sql.DBStats (which the seed's GetConnectionStats returns). */
export interface PoolStats {
  /** Configured pool size. */
  maxOpenConnections: number;
  /** Connections open now (in use + idle). */
  openConnections: number;
  inUse: number;
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

export const BREAKER_STATES = ['closed', 'open', 'half-open'] as const;
export type BreakerState = (typeof BREAKER_STATES)[number];

/** The result of one health check. */
export interface HealthReport {
  status: 'up' | 'down';
  latencyMs: number;
  /** ISO-8601 time of the check. */
  checkedAt: string;
  /** Why the check failed; secret-free. */
  error?: string;
  pool: PoolStats;
  breaker: BreakerState;
  server?: { version: string; inRecovery: boolean };
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
  getConnectionStats(): PoolStats;
  /** Immediate; idempotent. */
  close(): Promise<void>;
}
