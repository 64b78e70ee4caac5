/**
 * The typed shape of the application's configuration, after the seed's
 * `Config { Server, Log, Database { Postgres } }`. Every duration is a number of
 * milliseconds (YAML and environment accept Go-style strings such as "500ms", "30s", "5m").
 * `loadConfig()` returns a deeply frozen value of this type.
 */

/** libpq's sslmode values, with libpq's meanings (see the README's TLS section). */
export const SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** What to do when code inside an ambient transaction takes a second pool connection (knex#1171). */
export const FOREIGN_CONNECTION_GUARD_MODES = ['off', 'warn', 'error'] as const;
export type ForeignConnectionGuardMode = (typeof FOREIGN_CONNECTION_GUARD_MODES)[number];

export interface ServerConfig {
  host: string;
  port: number;
  /** Longest wait for in-flight requests on SIGTERM before the database drains, ms. */
  shutdownTimeout: number;
  /** Largest accepted request body, bytes (bulk import streams are exempt). */
  bodyLimit: number;
}

export interface LogConfig {
  level: LogLevel;
  /** Human-readable output (pino-pretty) instead of JSON lines. */
  pretty: boolean;
  /** Log SQL bind values. Off by default: they carry personal data and secrets. */
  queryBindings: boolean;
  /** Queries slower than this log at warn, ms. */
  slowQueryThreshold: number;
}

export interface PostgresConfig {
  /** Server host; empty means "run an embedded PostgreSQL" (the development default). */
  host: string;
  port: number;
  /** Database name. */
  name: string;
  username: string;
  /** Never logged or printed; non-enumerable on the loaded config. */
  password: string;
  sslMode: SslMode;
  /** Path of a PEM file with the CA certificate(s) for verify-ca / verify-full. */
  sslRootCert: string;
  /** Pool size (tarn `max`). */
  maxOpenConns: number;
  /** Connections kept open when idle (tarn `min`); at most maxOpenConns. */
  maxIdleConns: number;
  /** A connection older than this is retired when next acquired or released, ms; 0 = never. */
  connMaxLifetime: number;
  /** An idle connection is closed after this long, ms. */
  connMaxIdleTime: number;
  /** Connect and pool-acquire timeout, ms. */
  timeout: number;
  /** Server-side statement_timeout for every connection, ms; 0 = none. */
  statementTimeout: number;
  /** Server-side lock_timeout for every connection, ms; 0 = none. */
  lockTimeout: number;
  /** Server-side idle_in_transaction_session_timeout, ms; 0 = none. */
  idleInTransactionSessionTimeout: number;
  /** Connect attempts after the first one (`connect()`). */
  maxRetries: number;
  /** Base delay of the connect backoff, ms (exponential, full jitter). */
  retryDelay: number;
  /** Cap on one connect backoff delay, ms. */
  maxRetryDelay: number;
  /** Period of the health loop, ms. */
  healthCheckInterval: number;
  /** Bound on one `health()` call, ms. */
  healthCheckTimeout: number;
  /** Longest wait of `disconnect()` for in-flight work, ms. */
  drainTimeout: number;
  /** `application_name` shown in pg_stat_activity. */
  applicationName: string;
  /** Run repository hot paths as named prepared statements; turn off behind PgBouncer transaction mode. */
  preparedStatements: boolean;
}

export interface TransactionConfig {
  /** Default attempts of a retried transaction (first run included). */
  maxAttempts: number;
  /** Base delay of the retry backoff, ms. */
  baseDelay: number;
  /** Cap on one retry delay, ms. */
  maxDelay: number;
  /** Default bound on a whole transaction, ms; 0 = none. */
  defaultTimeout: number;
  foreignConnectionGuard: ForeignConnectionGuardMode;
}

export interface EmbeddedConfig {
  /** Data directory of the embedded server, reused across runs. */
  dataDir: string;
}

export interface MigrationsConfig {
  /** Optional privileged role for DDL; empty = the application's credentials. */
  username: string;
  /** Never logged or printed. */
  password: string;
  /** lock_timeout for migration connections, ms. */
  lockTimeout: number;
}

export interface BreakerConfig {
  /** Consecutive connection-class failures that open the breaker. */
  threshold: number;
  /** Time the breaker stays open before one trial call, ms. */
  halfOpenAfter: number;
}

export interface DatabaseConfig {
  postgres: PostgresConfig;
  transactions: TransactionConfig;
  embedded: EmbeddedConfig;
  migrations: MigrationsConfig;
  breaker: BreakerConfig;
  /** Run pending migrations at start-up (on in development and test, off in production). */
  migrateOnStart: boolean;
}

export interface AppConfig {
  /** The profile the config was loaded for (APP_ENV, else NODE_ENV, else development). */
  profile: string;
  server: ServerConfig;
  log: LogConfig;
  database: DatabaseConfig;
}
