/**
 * Every environment variable that sets a configuration key: name -> key path. The one place
 * this mapping lives; the loader, the table in docs/configuration.md and the tests all read it. Each name also
 * has a `<NAME>_FILE` twin that reads the value from a file (Docker and Kubernetes secrets).
 *
 * `APP_ENV` (the profile), `DATABASE_URL` (parsed on its own, highest precedence) and
 * `CONFIG_DIR` are read by the loader directly and are not in this table.
 */
export const ENV_VARS: Readonly<Record<string, string>> = {
  SERVER_HOST: 'server.host',
  SERVER_PORT: 'server.port',
  SERVER_SHUTDOWN_TIMEOUT: 'server.shutdownTimeout',
  SERVER_BODY_LIMIT: 'server.bodyLimit',
  SERVER_REQUEST_TIMEOUT: 'server.requestTimeout',
  SERVER_HEADERS_TIMEOUT: 'server.headersTimeout',
  SERVER_KEEP_ALIVE_TIMEOUT: 'server.keepAliveTimeout',
  SERVER_BODY_TIMEOUT: 'server.bodyTimeout',
  SERVER_HEALTH_CACHE_TTL: 'server.healthCacheTtl',
  SERVER_READINESS_POOL_SATURATED_FOR: 'server.readiness.poolSaturatedFor',
  SERVER_IMPORT_TIMEOUT: 'server.import.timeout',
  SERVER_IMPORT_MIN_BYTES_PER_SECOND: 'server.import.minBytesPerSecond',
  SERVER_IMPORT_MIN_RATE_GRACE_PERIOD: 'server.import.minRateGracePeriod',
  SERVER_IMPORT_MAX_CONCURRENT: 'server.import.maxConcurrent',
  SERVER_IMPORT_MAX_PER_CLIENT: 'server.import.maxPerClient',
  SERVER_IMPORT_MAX_ROWS: 'server.import.maxRows',
  SERVER_IMPORT_MAX_BYTES: 'server.import.maxBytes',
  SERVER_CURSOR_SECRET: 'server.cursorSecret',

  LOG_LEVEL: 'log.level',
  LOG_PRETTY: 'log.pretty',
  LOG_QUERY_BINDINGS: 'log.queryBindings',
  LOG_SLOW_QUERY_THRESHOLD: 'log.slowQueryThreshold',

  OBSERVABILITY_TRACING: 'observability.tracing',

  DB_HOST: 'database.postgres.host',
  DB_PORT: 'database.postgres.port',
  DB_NAME: 'database.postgres.name',
  DB_USER: 'database.postgres.username',
  DB_PASSWORD: 'database.postgres.password',
  DB_SSLMODE: 'database.postgres.sslMode',
  DB_SSL_ROOT_CERT: 'database.postgres.sslRootCert',
  DB_CHANNEL_BINDING: 'database.postgres.channelBinding',
  DB_ALLOW_INSECURE_AUTH: 'database.postgres.allowInsecurePasswordAuth',
  DB_MAX_OPEN_CONNS: 'database.postgres.maxOpenConns',
  DB_MAX_IDLE_CONNS: 'database.postgres.maxIdleConns',
  DB_CONN_MAX_LIFETIME: 'database.postgres.connMaxLifetime',
  DB_CONN_MAX_IDLE_TIME: 'database.postgres.connMaxIdleTime',
  DB_TIMEOUT: 'database.postgres.timeout',
  DB_STATEMENT_TIMEOUT: 'database.postgres.statementTimeout',
  DB_LOCK_TIMEOUT: 'database.postgres.lockTimeout',
  DB_IDLE_IN_TRANSACTION_SESSION_TIMEOUT: 'database.postgres.idleInTransactionSessionTimeout',
  DB_MAX_RETRIES: 'database.postgres.maxRetries',
  DB_RETRY_DELAY: 'database.postgres.retryDelay',
  DB_MAX_RETRY_DELAY: 'database.postgres.maxRetryDelay',
  DB_HEALTH_CHECK_INTERVAL: 'database.postgres.healthCheckInterval',
  DB_HEALTH_CHECK_TIMEOUT: 'database.postgres.healthCheckTimeout',
  DB_DRAIN_TIMEOUT: 'database.postgres.drainTimeout',
  DB_APPLICATION_NAME: 'database.postgres.applicationName',
  DB_PREPARED_STATEMENTS: 'database.postgres.preparedStatements',
  DB_POOLER_MODE: 'database.postgres.poolerMode',
  DB_LEAK_DETECTION_THRESHOLD: 'database.postgres.leakDetectionThreshold',
  DB_HOSTS: 'database.postgres.hosts',
  DB_TARGET_SESSION_ATTRS: 'database.postgres.targetSessionAttrs',
  DB_REPLICAS: 'database.postgres.replicas',
  DB_REPLICA_WAIT_TIMEOUT: 'database.postgres.replicaWaitTimeout',

  DB_TX_MAX_ATTEMPTS: 'database.transactions.maxAttempts',
  DB_TX_BASE_DELAY: 'database.transactions.baseDelay',
  DB_TX_MAX_DELAY: 'database.transactions.maxDelay',
  DB_TX_DEFAULT_TIMEOUT: 'database.transactions.defaultTimeout',
  DB_FOREIGN_CONNECTION_GUARD: 'database.transactions.foreignConnectionGuard',
  DB_TX_RESOLVE_LOST_COMMIT: 'database.transactions.resolveLostCommit',
  DB_TX_RETRY_BUDGET_RATIO: 'database.transactions.retryBudget.ratio',
  DB_TX_RETRY_BUDGET_BURST: 'database.transactions.retryBudget.burst',

  DB_EMBEDDED_DATA_DIR: 'database.embedded.dataDir',

  DB_MIGRATIONS_USER: 'database.migrations.username',
  DB_MIGRATIONS_PASSWORD: 'database.migrations.password',
  DB_MIGRATIONS_LOCK_TIMEOUT: 'database.migrations.lockTimeout',

  DB_BREAKER_THRESHOLD: 'database.breaker.threshold',
  DB_BREAKER_HALF_OPEN_AFTER: 'database.breaker.halfOpenAfter',

  DB_MIGRATE_ON_START: 'database.migrateOnStart',
};
