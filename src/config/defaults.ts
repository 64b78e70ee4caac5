import type { AppConfig } from './app-config.js';

/** A partial configuration: any subset of the keys, at any depth (one layer of the merge). */
export type ConfigLayer = { [K in keyof AppConfig]?: DeepPartial<AppConfig[K]> };
type DeepPartial<T> = T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

/**
 * The built-in defaults: the lowest layer, under `config/default.yaml`, chosen to be safe for
 * production when nothing else is configured (bind to loopback only, JSON logs, no migrations at
 * start-up, bearer-token authentication). Every key exists here, so this object is also the list of known keys. Durations are
 * milliseconds, sizes bytes. `PROFILE_DEFAULTS` adjusts a few keys per profile.
 *
 * `database.postgres.host` is empty: "run an embedded PostgreSQL", which only the development and
 * test profiles accept. `sslMode` is `verify-full` (not libpq's `prefer`, which an on-path attacker
 * defeats): the certificate must chain to `sslRootCert`, or to Node's built-in public CAs when that
 * is empty, and name the host. Channel binding is used where the server offers it, and a cleartext
 * or MD5 password request over an unverified connection is refused (`allowInsecurePasswordAuth`).
 */
export const DEFAULTS: Omit<AppConfig, 'profile'> = {
  server: {
    host: '127.0.0.1',
    port: 8080,
    shutdownTimeout: 10_000,
    bodyLimit: 1_048_576,
    requestTimeout: 30_000,
    headersTimeout: 10_000,
    keepAliveTimeout: 72_000,
    bodyTimeout: 10_000,
    healthCacheTtl: 1_000,
    readiness: { poolSaturatedFor: 2_000 },
    import: {
      timeout: 300_000,
      minBytesPerSecond: 1_024,
      minRateGracePeriod: 5_000,
      maxConcurrent: 2,
      maxPerClient: 1,
      maxRows: 1_000_000,
      maxBytes: 268_435_456,
    },
    cursorSecret: '',
    auth: {
      mode: 'jwt',
      jwt: { publicKey: '', jwksUrl: '', issuer: '', audience: '', clockTolerance: 5_000 },
    },
    admin: { port: 0, host: '127.0.0.1' },
  },
  log: {
    level: 'info',
    pretty: false,
    queryBindings: false,
    slowQueryThreshold: 1_000,
  },
  observability: {
    tracing: false,
  },
  database: {
    postgres: {
      host: '',
      port: 5432,
      name: 'app',
      username: 'app',
      password: '',
      sslMode: 'verify-full',
      sslRootCert: '',
      channelBinding: 'prefer',
      allowInsecurePasswordAuth: false,
      maxOpenConns: 10,
      maxIdleConns: 10,
      connMaxLifetime: 1_800_000,
      connMaxIdleTime: 300_000,
      timeout: 5_000,
      statementTimeout: 30_000,
      lockTimeout: 10_000,
      idleInTransactionSessionTimeout: 60_000,
      maxRetries: 5,
      retryDelay: 200,
      maxRetryDelay: 5_000,
      healthCheckInterval: 10_000,
      healthCheckTimeout: 2_000,
      drainTimeout: 10_000,
      applicationName: 'pg-data-layer',
      preparedStatements: true,
      poolerMode: 'none',
      leakDetectionThreshold: 0,
      hosts: [],
      targetSessionAttrs: 'any',
      replicas: [],
      replicaWaitTimeout: 1_000,
    },
    transactions: {
      maxAttempts: 3,
      baseDelay: 20,
      maxDelay: 1_000,
      defaultTimeout: 0,
      foreignConnectionGuard: 'warn',
      resolveLostCommit: true,
      resolveAcrossFailover: false,
      retryBudget: { ratio: 0.1, burst: 10 },
    },
    embedded: {
      dataDir: '.data/postgres',
    },
    migrations: {
      username: '',
      password: '',
      lockTimeout: 5_000,
    },
    breaker: {
      threshold: 5,
      halfOpenAfter: 5_000,
    },
    migrateOnStart: false,
  },
};

/**
 * Per-profile adjustments of `DEFAULTS`, applied before any YAML. Built in (not only in
 * `config/<profile>.yaml`) so that a deployment without the `config/` directory still behaves
 * as its profile should. A profile not listed here uses `DEFAULTS` as they are.
 *
 * - development: no authentication (`server.auth.mode: none`), debug-level pretty logs, migrations at start-up, embedded PostgreSQL over a
 *   local socket without TLS (`sslMode: disable`; the embedded server has no certificate).
 * - test: no authentication, warn-level JSON logs (quiet test output), migrations at start-up, no TLS.
 * - production: listens on every interface (`0.0.0.0`, for containers), with `/metrics` and the
 *   detailed `/health` on the admin listener (`127.0.0.1:9090`); migrations are a separate
 *   deploy step (`migrateOnStart: false`). A host and a password are required; TLS is
 *   `verify-full` (the built-in default, kept).
 */
export const PROFILE_DEFAULTS: Readonly<Record<string, ConfigLayer>> = {
  development: {
    server: { auth: { mode: 'none' } },
    log: { level: 'debug', pretty: true },
    database: { postgres: { sslMode: 'disable' }, migrateOnStart: true },
  },
  test: {
    server: { auth: { mode: 'none' } },
    log: { level: 'warn' },
    database: { postgres: { sslMode: 'disable' }, migrateOnStart: true },
  },
  production: {
    server: { host: '0.0.0.0', admin: { port: 9090 } },
  },
};

/** Keys whose values are secrets: never printed, logged or echoed in an error. */
export const SECRET_KEYS: readonly string[] = [
  'database.postgres.password',
  'database.migrations.password',
  'server.cursorSecret',
];
