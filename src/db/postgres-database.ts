// SKELETON: the PostgresDatabase work replaces the bodies marked TODO (see issue 2).
import knexFactory, { type Knex } from 'knex';
import type { PostgresConfig } from '../config/app-config.js';
import type { Logger } from '../observability/logger.js';
import type { Database, HealthReport, PoolStats, TxOptions } from './database.js';
import { TxManager } from './tx-manager.js';

export class PostgresDatabase implements Database {
  readonly #cfg: PostgresConfig;
  readonly #logger: Logger;
  readonly #knex: Knex;
  readonly #tx: TxManager;

  constructor(cfg: PostgresConfig, logger: Logger) {
    this.#cfg = cfg;
    this.#logger = logger.child({ component: 'database' });
    this.#knex = knexFactory({
      client: 'pg',
      connection: {
        host: cfg.host,
        port: cfg.port,
        database: cfg.name,
        user: cfg.username,
        password: cfg.password,
        application_name: cfg.applicationName,
      },
      pool: { min: 0, max: cfg.maxOpenConns },
      acquireConnectionTimeout: cfg.timeout,
      compileSqlOnError: false,
    });
    // Transactions have one implementation: TxManager. The database delegates to it.
    this.#tx = new TxManager(this, this.#logger);
  }

  async connect(_signal?: AbortSignal): Promise<void> {
    await this.#knex.raw('select 1'); // TODO retries, backoff, ConnectionError
  }

  async disconnect(): Promise<void> {
    await this.#knex.destroy(); // TODO drain
  }

  async health(): Promise<HealthReport> {
    const started = Date.now();
    await this.#knex.raw('select 1'); // TODO
    return {
      status: 'up',
      latencyMs: Date.now() - started,
      checkedAt: new Date().toISOString(),
      pool: this.getConnectionStats(),
      breaker: 'closed',
    };
  }

  beginTx(opts?: TxOptions): Promise<Knex.Transaction> {
    return this.#tx.beginTx(opts);
  }

  withTransaction<T>(fn: (trx: Knex.Transaction) => Promise<T>, opts?: TxOptions): Promise<T> {
    return this.#tx.withTransaction(fn, opts);
  }

  driver(): Knex {
    return this.#knex;
  }

  getConnectionStats(): PoolStats {
    return {
      maxOpenConnections: this.#cfg.maxOpenConns,
      openConnections: 0,
      inUse: 0,
      idle: 0,
      pendingAcquires: 0,
      waitCount: 0,
      waitDurationMs: 0,
      maxIdleClosed: 0,
      maxIdleTimeClosed: 0,
      maxLifetimeClosed: 0,
    }; // TODO
  }

  async close(): Promise<void> {
    await this.#knex.destroy();
  }
}
