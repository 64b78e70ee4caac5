import type { PostgresConfig } from '../config/app-config.js';

/** A database of a test's own, cloned from the template (migrated and seeded). */
export interface TestDatabase {
  name: string;
  /** Superuser URL of this database. */
  url: string;
  /**
   * A `PostgresConfig` for `new PostgresDatabase(...)` pointing at this database as the
   * superuser, with test-friendly defaults (a pool of 5, short retries, no TLS) and `overrides`.
   */
  config(overrides?: Partial<PostgresConfig>): PostgresConfig;
  /** Drops the database (`with (force)`: open connections are terminated). Idempotent. */
  drop(): Promise<void>;
}

/** Test defaults for every PostgresConfig key; the URL supplies where and who. */
export function postgresConfigFromUrl(url: URL): PostgresConfig {
  return {
    host: url.hostname,
    port: Number(url.port || 5432),
    name: decodeURIComponent(url.pathname.slice(1)),
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
