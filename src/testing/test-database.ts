import type { PostgresConfig } from '../config/app-config.js';
import { DEFAULTS } from '../config/defaults.js';

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

/**
 * The layer's defaults (`DEFAULTS.database.postgres`) with what a test wants instead: the URL's
 * server and credentials, no TLS, a small pool, short retries and health checks. Deriving from
 * the defaults keeps every key the layer adds present here.
 */
export function postgresConfigFromUrl(url: URL): PostgresConfig {
  return {
    ...DEFAULTS.database.postgres,
    host: url.hostname,
    port: Number(url.port || 5432),
    name: decodeURIComponent(url.pathname.slice(1)),
    username: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    sslMode: 'disable',
    maxOpenConns: 5,
    maxIdleConns: 2,
    connMaxLifetime: 0,
    connMaxIdleTime: 30_000,
    maxRetries: 2,
    retryDelay: 50,
    maxRetryDelay: 1_000,
    healthCheckInterval: 5_000,
    healthCheckTimeout: 1_000,
    drainTimeout: 5_000,
    applicationName: 'pgdl-test',
  };
}
