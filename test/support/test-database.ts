import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { PostgresConfig } from '../../src/config/app-config.js';
import { queryOnce } from './query-once.js';
import { testServer } from './root-hooks.js';

/** Name of the template every suite database is cloned from. */
export const TEMPLATE_DATABASE = 'pgdl_template';

/** A database of one suite's own, created from the template and dropped afterwards. */
export interface TestDatabase {
  name: string;
  /** Superuser URL of this database. */
  url: string;
  /** A PostgresConfig pointing at this database (superuser credentials), with overrides. */
  config(overrides?: Partial<PostgresConfig>): PostgresConfig;
  drop(): Promise<void>;
}

/** Runs one statement on the server's maintenance database. */
export async function adminQuery(sql: string, values?: unknown[]): Promise<pg.QueryResult> {
  return queryOnce(testServer().adminUrl, sql, values);
}

/** Creates a fresh database from the template (migrated and seeded once per run). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `pgdl_test_${randomBytes(5).toString('hex')}`;
  await adminQuery(`create database ${name} template ${TEMPLATE_DATABASE}`);
  const url = new URL(testServer().adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    config: (overrides = {}) => ({ ...postgresConfigFromUrl(url), ...overrides }),
    drop: async () => {
      await adminQuery(`drop database if exists ${name} with (force)`);
    },
  };
}

/** Databases whose suites have finished, dropped by `dropFinishedDatabases()`. */
const finished: TestDatabase[] = [];

/**
 * Mocha helper: a fresh database for the enclosing `describe`.
 * ```ts
 * const db = useTestDatabase();
 * it('...', () => { const cfg = db().config({ maxOpenConns: 2 }); ... });
 * ```
 * The drop is deferred to the next suite's start (and the end of the run): mocha runs a
 * describe's `after` hooks in the order they were registered, so dropping here would run
 * before the suite's own `after` that closes its pools.
 */
export function useTestDatabase(): () => TestDatabase {
  let current: TestDatabase | undefined;
  before(async () => {
    await dropFinishedDatabases();
    current = await createTestDatabase();
  });
  after(() => {
    if (current) finished.push(current);
  });
  return () => {
    if (!current) throw new Error('useTestDatabase(): the database exists only inside hooks and tests');
    return current;
  };
}

/** Drops the databases of suites that have finished (their pools are closed by now). */
export async function dropFinishedDatabases(): Promise<void> {
  for (const db of finished.splice(0)) await db.drop();
}

/**
 * The `DB_*` environment variables (host, port, name, user, password) that point the config
 * loader or the knex CLI at database `name` on the run's server, as the superuser.
 */
export function serverEnv(name: string): Record<string, string> {
  const url = new URL(testServer().adminUrl);
  return {
    DB_HOST: url.hostname,
    DB_PORT: url.port || '5432',
    DB_NAME: name,
    DB_USER: decodeURIComponent(url.username),
    DB_PASSWORD: decodeURIComponent(url.password),
  };
}

/** Test defaults for every PostgresConfig key; the URL supplies where and who. */
export function postgresConfigFromUrl(url: URL): PostgresConfig {
  return {
    host: url.hostname,
    port: Number(url.port || 5432),
    name: url.pathname.slice(1),
    username: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    sslMode: 'disable',
    sslRootCert: '',
    channelBinding: 'prefer',
    allowInsecurePasswordAuth: false,
    maxOpenConns: 5,
    maxIdleConns: 2,
    connMaxLifetime: 0,
    connMaxIdleTime: 30_000,
    timeout: 5_000,
    statementTimeout: 30_000,
    lockTimeout: 10_000,
    idleInTransactionSessionTimeout: 60_000,
    maxRetries: 2,
    retryDelay: 50,
    maxRetryDelay: 1_000,
    healthCheckInterval: 5_000,
    healthCheckTimeout: 1_000,
    drainTimeout: 5_000,
    applicationName: 'pgdl-test',
    preparedStatements: true,
    poolerMode: 'none',
    leakDetectionThreshold: 0,
    hosts: [],
    targetSessionAttrs: 'any',
    replicas: [],
    replicaWaitTimeout: 1_000,
  };
}
