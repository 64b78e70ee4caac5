/**
 * The typed shape of the application's configuration, after the Go original's
 * `Config { Server, Log, Database { Postgres } }`. Every duration is a number of
 * milliseconds (YAML and environment accept Go-style strings such as "500ms", "30s", "5m").
 * `loadConfig()` returns a deeply frozen value of this type.
 */

/** libpq's sslmode values, with libpq's meanings (see docs/configuration.md, TLS). */
export const SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
/** One of `SSL_MODES`. */
export type SslMode = (typeof SSL_MODES)[number];

/** libpq's `channel_binding` values (SCRAM-SHA-256-PLUS over TLS): `disable`, `prefer`, `require`. */
export const CHANNEL_BINDING_MODES = ['disable', 'prefer', 'require'] as const;
/** One of `CHANNEL_BINDING_MODES`. */
export type ChannelBinding = (typeof CHANNEL_BINDING_MODES)[number];

/** pino's levels, most severe first; `silent` writes nothing. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** One of `LOG_LEVELS`. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * libpq's `target_session_attrs`: which of several hosts a connection may settle on. `any`
 * takes the first that accepts; `read-write` one whose sessions accept writes
 * (`transaction_read_only` off), `read-only` the opposite; `primary` one not in recovery
 * (`pg_is_in_recovery()`), `standby` one in recovery; `prefer-standby` a standby when one
 * answers, else any.
 */
export const TARGET_SESSION_ATTRS = [
  'any',
  'read-write',
  'read-only',
  'primary',
  'standby',
  'prefer-standby',
] as const;
/** One of `TARGET_SESSION_ATTRS`. */
export type TargetSessionAttrs = (typeof TARGET_SESSION_ATTRS)[number];

/**
 * What sits between the pool and PostgreSQL: `none` (a server, or a pooler in session mode) or
 * `transaction` (PgBouncer transaction pooling: nothing session-level is sent; docs/scale-out.md).
 */
export const POOLER_MODES = ['none', 'transaction'] as const;
/** One of `POOLER_MODES`. */
export type PoolerMode = (typeof POOLER_MODES)[number];

/** What to do when code inside an ambient transaction takes a second pool connection (knex#1171). */
export const FOREIGN_CONNECTION_GUARD_MODES = ['off', 'warn', 'error'] as const;
/** One of `FOREIGN_CONNECTION_GUARD_MODES`. */
export type ForeignConnectionGuardMode = (typeof FOREIGN_CONNECTION_GUARD_MODES)[number];

/** The HTTP server (`server.*`). */
export interface ServerConfig {
  /** Interface to listen on; default `127.0.0.1` (`0.0.0.0` in production). */
  host: string;
  /** TCP port; 0 picks a free one. Default 8080. */
  port: number;
  /** Longest wait for in-flight requests on SIGTERM before the database drains, ms; default 10000. */
  shutdownTimeout: number;
  /** Largest accepted request body, bytes (bulk import streams are exempt; it bounds one import row instead); default 1048576. */
  bodyLimit: number;
  /**
   * Longest time to receive a whole request, headers and body, ms (Node's and Fastify's
   * `requestTimeout`); 0 = none. Not for `POST /users/import`, which `import.timeout` bounds
   * instead. Past it: 408 and the connection closed. Default 30000.
   */
  requestTimeout: number;
  /** Longest time to receive the request headers, ms (Node's `headersTimeout`, Go's `ReadHeaderTimeout`); default 10000. */
  headersTimeout: number;
  /** An idle kept-alive connection is closed after this long, ms (Node's and Fastify's `keepAliveTimeout`); default 72000. */
  keepAliveTimeout: number;
  /**
   * Longest gap between two chunks of a request body, ms (undici's `bodyTimeout`, the same
   * gap on the client side); 0 = none. Past it: 408 and the connection closed. Default 10000.
   */
  bodyTimeout: number;
  /** A `/health` result is reused for this long, and concurrent requests share one check, ms; 0 = every request still shares the check in flight. Default 1000. */
  healthCacheTtl: number;
  /** When `/readyz` reports not ready besides the database and breaker state. */
  readiness: ReadinessConfig;
  /** Limits of `POST /users/import`. */
  import: ImportConfig;
  /**
   * HMAC-SHA256 key that signs list cursors (`GET /users?cursor=`), so an edited or forged
   * cursor is refused with 400; at least 32 characters. A secret: hidden from printed and
   * logged configs like the passwords. Required by `startService` in production (one value
   * shared by every replica, so a cursor from one is valid on the next); empty elsewhere
   * means a random per-process key. Default empty.
   */
  cursorSecret: string;
  /** Who may call the API (`server.auth.*`). */
  auth: AuthConfig;
  /** The operators' listener for `/metrics` and the detailed `/health` (`server.admin.*`). */
  admin: AdminListenerConfig;
}

/**
 * How requests are authenticated: `jwt` (bearer JSON Web Tokens, every route denied unless it
 * declares a scope the token carries or is public) or `none` (everything open, every caller
 * anonymous: for development and tests).
 */
export const AUTH_MODES = ['jwt', 'none'] as const;
/** One of `AUTH_MODES`. */
export type AuthMode = (typeof AUTH_MODES)[number];

/** Authentication of the public listener (`server.auth.*`). */
export interface AuthConfig {
  /** `jwt` (the built-in and production default) or `none` (development and test default). */
  mode: AuthMode;
  /** How bearer tokens are verified when `mode` is `jwt`. */
  jwt: JwtConfig;
}

/** Verification of bearer JWTs (`server.auth.jwt.*`). Exactly one of `publicKey` and `jwksUrl` in mode `jwt`. */
export interface JwtConfig {
  /**
   * The issuer's public key as PEM (SPKI or an X.509 certificate): RSA (RS256), EC P-256 (ES256)
   * or Ed25519 (EdDSA); the key's type pins the one algorithm accepted. Default empty.
   */
  publicKey: string;
  /** URL of the issuer's JSON Web Key Set (https, or http on loopback); keys are fetched and cached. Default empty. */
  jwksUrl: string;
  /** Required `iss` claim; empty (the default) = not checked. */
  issuer: string;
  /** Required `aud` claim (one of the token's audiences); empty (the default) = not checked. */
  audience: string;
  /** Leeway for `exp` and `nbf` against clock skew, ms; default 5000. */
  clockTolerance: number;
}

/** The admin listener (`server.admin.*`). */
export interface AdminListenerConfig {
  /**
   * Its TCP port; 0 (the development and test default) = no admin listener: `/metrics` and the
   * detailed `/health` stay on the public port. Default 9090 in production.
   */
  port: number;
  /** Interface it listens on; default `127.0.0.1`. */
  host: string;
}

/** Readiness rules (`server.readiness.*`). */
export interface ReadinessConfig {
  /**
   * `/readyz` answers 503 once every pool connection has been in use, with acquires waiting,
   * for this long, ms (a balancer then stops sending); ready again as soon as the pool is not
   * saturated. 0 = never. Default 2000.
   */
  poolSaturatedFor: number;
}

/** Limits of one bulk import (`server.import.*`). */
export interface ImportConfig {
  /** Deadline of one upload, from its request's start until its body is read whole, ms; 0 = none. Default 300000 (5 min). */
  timeout: number;
  /**
   * Slowest accepted upload, bytes per second of time spent waiting for the client (time the
   * import waits on the database does not count), checked after `minRateGracePeriod`
   * (Kestrel's `MinRequestBodyDataRate`); 0 = no minimum. Default 1024.
   */
  minBytesPerSecond: number;
  /** Waiting time before the minimum rate applies, ms; default 5000. */
  minRateGracePeriod: number;
  /** Imports running at once (each holds one pool connection); one more is refused with 503 and `Retry-After`. Default 2. */
  maxConcurrent: number;
  /**
   * Imports one client may run at once, out of `maxConcurrent`; one more is refused with 429 and
   * `Retry-After`. A client is the verified token's subject (`sub`) where there is one, else the
   * peer address (behind a proxy or ingress every client may share one address). 0 = no
   * per-client cap (only `maxConcurrent`). Default 1.
   */
  maxPerClient: number;
  /** Most rows one import may carry; one more ends it with 413 (rolled back); 0 = no cap. Default 1000000. */
  maxRows: number;
  /** Most body bytes one import may send; one more ends it with 413 (rolled back); 0 = no cap. Default 268435456 (256 MiB). */
  maxBytes: number;
}

/** Logging (`log.*`). */
export interface LogConfig {
  /** Lowest level written; default info (debug in development, warn in test). */
  level: LogLevel;
  /** Human-readable output (pino-pretty) instead of JSON lines; default false (true in development). */
  pretty: boolean;
  /** Log SQL bind values. Off by default: they carry personal data and secrets. */
  queryBindings: boolean;
  /** Queries slower than this log at warn, ms; default 1000. */
  slowQueryThreshold: number;
}

/** Telemetry beyond logs (`observability.*`). */
export interface ObservabilityConfig {
  /**
   * OpenTelemetry spans for HTTP requests, transactions, pool checkouts and statements, sent to
   * the tracer provider the process registered (docs/observability.md); default false. With no
   * SDK registered they are no-ops.
   */
  tracing: boolean;
}

/** The PostgreSQL connection and pool (`database.postgres.*`); defaults in `DEFAULTS`. */
export interface PostgresConfig {
  /** Server host; empty means "run an embedded PostgreSQL" (the development default). */
  host: string;
  /** Default 5432. */
  port: number;
  /** Database name; default `app`. */
  name: string;
  /** Role to connect as; default `app`. */
  username: string;
  /** Never logged or printed; non-enumerable on the loaded config. */
  password: string;
  /**
   * TLS with libpq's meanings; default `verify-full` (the chain must lead to `sslRootCert`, or to
   * Node's built-in public CAs when that is empty, and the certificate must name the host);
   * `disable` in the development and test profiles (the embedded server has no certificate).
   */
  sslMode: SslMode;
  /** Path of a PEM file with the CA certificate(s) for verify-ca / verify-full. */
  sslRootCert: string;
  /**
   * SCRAM channel binding, libpq's `channel_binding`: `prefer` (the default) authenticates with
   * SCRAM-SHA-256-PLUS when the server offers it over TLS, binding the password proof to this
   * TLS session so a relay cannot reuse it; `require` refuses any authentication that is not
   * channel-bound (so it needs TLS and a SCRAM password); `disable` never binds.
   */
  channelBinding: ChannelBinding;
  /**
   * Allow answering a cleartext or MD5 password request over a connection whose server was not
   * verified (`sslMode` disable, require without `sslRootCert`, or prefer), where an on-path
   * attacker could take the password (cleartext) or a replayable, crackable hash (MD5). Default
   * false: such a request fails the connect with a `ConnectionError` naming this setting.
   * SCRAM never sends the password and is always allowed; so are Unix-socket connections.
   */
  allowInsecurePasswordAuth: boolean;
  /** Pool size (tarn `max`); default 10. */
  maxOpenConns: number;
  /**
   * Most idle connections kept open (Go's `MaxIdleConns`, a cap: a connection returned beyond it
   * is closed); 0 keeps none. Default 10. An explicit value above maxOpenConns is an error; the
   * default acts as maxOpenConns when that is lower (as Go's `SetMaxOpenConns` lowers it).
   */
  maxIdleConns: number;
  /** A connection older than this is retired: idle ones by the cleaner, others when next acquired or released, ms; 0 = never; default 1800000 (30 min). */
  connMaxLifetime: number;
  /** An idle connection is closed after this long, ms; 0 = never; default 300000 (5 min). No idle floor is kept. */
  connMaxIdleTime: number;
  /** Connect and pool-acquire timeout, ms; default 5000. */
  timeout: number;
  /** Server-side statement_timeout for every connection, ms; 0 = none; default 30000. */
  statementTimeout: number;
  /** Server-side lock_timeout for every connection, ms; 0 = none; default 10000. */
  lockTimeout: number;
  /** Server-side idle_in_transaction_session_timeout, ms; 0 = none; default 60000. */
  idleInTransactionSessionTimeout: number;
  /** Connect attempts after the first one (`connect()`); default 5. */
  maxRetries: number;
  /** Base delay of the connect backoff, ms (exponential, full jitter); default 200. */
  retryDelay: number;
  /** Cap on one connect backoff delay, ms; default 5000. */
  maxRetryDelay: number;
  /** Period of the health loop, ms; default 10000. */
  healthCheckInterval: number;
  /** Bound on one `health()` call, ms; default 2000. */
  healthCheckTimeout: number;
  /** Longest wait of `disconnect()` for in-flight work, ms; default 10000. */
  drainTimeout: number;
  /** `application_name` shown in pg_stat_activity; default `pg-data-layer`. */
  applicationName: string;
  /** Run repository hot paths as named prepared statements; turn off behind PgBouncer transaction mode. Default true. */
  preparedStatements: boolean;
  /**
   * `transaction` behind PgBouncer in transaction pooling mode: no startup `options`, no session
   * `SET`, no named prepared statements (`preparedStatements` is then ignored); the timeouts are
   * sent as `SET LOCAL` with every BEGIN and, outside transactions, enforced by a client-side
   * cancel at `statementTimeout`. Default `none`.
   */
  poolerMode: PoolerMode;
  /**
   * HikariCP's leak detection: a connection checked out longer than this is logged once at warn
   * with the application stack that acquired it, ms; 0 = off (the default). While on, every
   * acquire captures a stack (a few microseconds).
   */
  leakDetectionThreshold: number;
  /**
   * Several servers as `host:port` (libpq's multi-host list; `[::1]:5432` for IPv6), tried in
   * order for every new connection; the first that accepts and matches `targetSessionAttrs` is
   * kept. Empty (the default): `host` and `port` alone. When set, `host`/`port` are not used for
   * connecting (a DATABASE_URL with several hosts sets `host`/`port` to the first).
   */
  hosts: string[];
  /** Which host of `hosts` a connection may settle on (libpq's meanings); default `any`. */
  targetSessionAttrs: TargetSessionAttrs;
  /**
   * Streaming replicas as `host:port` (same database, credentials and TLS settings), one pool
   * each, for `withReadOnlyTransaction(fn, { target: 'replica' })`. Default none.
   */
  replicas: string[];
  /**
   * Longest wait of a replica read for the replica to replay the commits it must see
   * (read-your-writes) before it runs on the primary instead, ms; default 1000.
   */
  replicaWaitTimeout: number;
}

/**
 * The retry budget (`database.transactions.retryBudget.*`), a token bucket per TxManager: it
 * holds at most `burst` tokens and starts full; every transaction adds `ratio` tokens, time adds
 * `burst` tokens per 10 s, and every retry takes one. With less than one token a retry is
 * refused and the caller gets the attempt's error at once.
 */
export interface RetryBudgetConfig {
  /** Tokens each transaction adds, 0-1; default 0.1 (retries: about 10 % of transactions, plus the refill). */
  ratio: number;
  /** Most tokens held, at least 1; default 10. */
  burst: number;
}

/** Defaults of the transaction manager (`database.transactions.*`). */
export interface TransactionConfig {
  /** Default attempts of a retried transaction (first run included); default 3. */
  maxAttempts: number;
  /** Base delay of the retry backoff, ms; default 20. */
  baseDelay: number;
  /** Cap on one retry delay, ms; default 1000. */
  maxDelay: number;
  /** Default bound on a whole transaction, ms; 0 = none (the default). */
  defaultTimeout: number;
  /** What a second pool checkout inside an ambient transaction does; default `warn`. */
  foreignConnectionGuard: ForeignConnectionGuardMode;
  /**
   * Record the transaction id (with BEGIN, or before COMMIT: `resolveAcrossFailover`) so that a COMMIT whose connection is lost is
   * resolved with `pg_xact_status`; default true. False saves one round trip per write
   * transaction, and a lost COMMIT then rejects with `CommitUnknownError`.
   */
  resolveLostCommit: boolean;
  /**
   * Resolve a lost COMMIT also on a node promoted after a failover or switchover: the xid is read
   * right before COMMIT with the WAL position (one round trip per read-write transaction) instead
   * of in BEGIN's message (then only the same server run answers, anything else is
   * `CommitUnknownError`). On by itself with several `hosts`; turn it on behind one address that
   * can move to another node (HAProxy routing to the leader, a virtual IP, a cloud failover DNS name).
   */
  resolveAcrossFailover: boolean;
  /** Bounds retries across all transactions of a TxManager; default `{ ratio: 0.1, burst: 10 }`. */
  retryBudget: RetryBudgetConfig;
}

/** The embedded development server (`database.embedded.*`). */
export interface EmbeddedConfig {
  /** Data directory of the embedded server, reused across runs; default `.data/postgres`. */
  dataDir: string;
}

/** Migration credentials and limits (`database.migrations.*`). */
export interface MigrationsConfig {
  /** Optional privileged role for DDL; empty = the application's credentials. */
  username: string;
  /** Never logged or printed. */
  password: string;
  /** lock_timeout for migration connections, ms; default 5000. */
  lockTimeout: number;
}

/** The circuit breaker in front of database work (`database.breaker.*`). */
export interface BreakerConfig {
  /** Consecutive connection-class failures that open the breaker; default 5. */
  threshold: number;
  /** Time the breaker stays open before one trial call, ms; default 5000. */
  halfOpenAfter: number;
}

/** Everything under `database.*`. */
export interface DatabaseConfig {
  postgres: PostgresConfig;
  transactions: TransactionConfig;
  embedded: EmbeddedConfig;
  migrations: MigrationsConfig;
  breaker: BreakerConfig;
  /** Run pending migrations at start-up (on in development and test, off in production). */
  migrateOnStart: boolean;
}

/** The whole configuration, as `loadConfig()` returns it: validated, deeply frozen, passwords hidden. */
export interface AppConfig {
  /** The profile the config was loaded for (APP_ENV, else NODE_ENV, else development). */
  profile: string;
  server: ServerConfig;
  log: LogConfig;
  observability: ObservabilityConfig;
  database: DatabaseConfig;
}
