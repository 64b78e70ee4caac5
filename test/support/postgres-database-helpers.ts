import { setTimeout as delay } from 'node:timers/promises';
import type { PostgresConfig } from '../../src/config/app-config.js';
import { PostgresDatabase, type PostgresDatabaseOptions } from '../../src/db/postgres-database.js';
import { Metrics } from '../../src/observability/metrics.js';
import { captureLogger, type CapturedLogger } from './capture-logger.js';
import { metricValue } from './metric-value.js';

/** The value of `db_connect_attempts_total{result}`. */
export async function connectAttempts(
  metrics: Metrics,
  result: 'success' | 'retry' | 'failure',
): Promise<number> {
  return metricValue(metrics.connectAttempts, { result });
}

/** Polls `check` every 20 ms until it is true; throws after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await delay(20);
  }
}

/** A PostgresDatabase a test opened, with its captured log lines and its metrics. */
export interface OpenedDatabase {
  db: PostgresDatabase;
  log: CapturedLogger;
  metrics: Metrics;
}

/**
 * Mocha helper: an opener of PostgresDatabases for the tests of the enclosing `describe`, each
 * with a capturing logger and its own Metrics (unless `options.metrics` is given); every
 * database opened by a test is closed after it.
 */
export function useDatabases(): (cfg: PostgresConfig, options?: PostgresDatabaseOptions) => OpenedDatabase {
  const open: PostgresDatabase[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((db) => db.close()));
  });
  return (cfg, options = {}) => {
    const log = captureLogger();
    const metrics = options.metrics ?? new Metrics();
    const db = new PostgresDatabase(cfg, log.logger, { ...options, metrics });
    open.push(db);
    return { db, log, metrics };
  };
}
