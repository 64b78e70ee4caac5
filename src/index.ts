/**
 * The public API of the data layer. Names exported here are a contract (docs/architecture.md):
 * tests outside this repository call them. Shapes may grow; names and meanings do not change
 * without a note in docs/architecture.md.
 */

// Configuration
export {
  loadConfig,
  ConfigError,
  redactConfig,
  parseDuration,
  ENV_VARS,
  SSL_MODES,
  CHANNEL_BINDING_MODES,
  LOG_LEVELS,
  FOREIGN_CONNECTION_GUARD_MODES,
  TARGET_SESSION_ATTRS,
  POOLER_MODES,
  AUTH_MODES,
} from './config/index.js';

// Observability
export { createLogger, scrubSecrets, REDACT_PATHS } from './observability/logger.js';
export { Metrics } from './observability/metrics.js';
export { attachQueryLogger } from './db/index.js';

// Database layer
export {
  PostgresDatabase,
  TxManager,
  EmbeddedServer,
  CircuitBreaker,
  BaseModel,
  currentTransaction,
  executorFor,
  classifyError,
  classifyTxError,
  isTransient,
  translateError,
  prepareMigrationTarget,
  ISOLATION_LEVELS,
  PROPAGATIONS,
  BREAKER_STATES,
  TwoPhaseCommit,
  TX_TARGETS,
} from './db/index.js';
export {
  ConnectionError,
  DatabaseClosedError,
  TransactionTimeoutError,
  CommitUnknownError,
  ReadOnlyTransactionError,
  CircuitOpenError,
  PoolExhaustedError,
  OptimisticLockError,
  SerializationError,
  StatementTimeoutError,
  TransactionStateError,
  TransactionAbortedError,
  TxOptionsError,
  ForeignConnectionError,
  TwoPhaseAbortedError,
  TwoPhaseIncompleteError,
  PreparedTransactionsDisabledError,
  UniqueViolationError,
  ForeignKeyViolationError,
  NotNullViolationError,
  CheckViolationError,
  ConstraintViolationError,
  DataError,
  DBError,
  ValidationError,
  NotFoundError,
} from './db/index.js';
export { embeddedPasswordFile } from './db/embedded/embedded-password.js';
export { AppError } from './app-error.js';

// Features
export { User, USER_STATUSES, WRITABLE_USER_STATUSES } from './users/user-model.js';
export { UserRepository, LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX } from './users/user-repository.js';
export { UserService } from './users/user-service.js';
export { HealthRepository } from './health/health-repository.js';
export { startService, createServiceLogger } from './app.js';
export { defineKnexfile } from './db/migrations/define-knexfile.js';
export { assertSeedingAllowed } from './db/migrations/migrations-config.js';

// Service security: authentication, scopes, the audit trail
export { registerAuth, authPlugin } from './http/auth/register-auth.js';
export { createJwtVerifier, JWT_ALGORITHMS } from './http/auth/jwt-verifier.js';
export { SCOPES, tokenScopes } from './http/auth/scopes.js';
export {
  AuthenticationError,
  InsufficientScopeError,
  AuthUnavailableError,
  AUTH_FAILURE_REASONS,
} from './http/auth/auth-errors.js';
export { AuditRepository, AUDIT_ACTIONS } from './audit/audit-repository.js';

export type * from './config/app-config.js';
export type { LoadConfigOptions } from './config/index.js';
export type { SectionSchema, SectionSchemas } from './config/app-sections.js';
export type { Logger, CreateLoggerOptions } from './observability/logger.js';
export type { TracingOptions } from './observability/tracing.js';
export type { QueryLogConfig } from './db/query-logger.js';
export type { PostgresDatabaseOptions } from './db/postgres-database.js';
export type {
  Database,
  TxOptions,
  RetryOptions,
  IsolationLevel,
  Propagation,
  PoolStats,
  PoolSize,
  HealthReport,
  BreakerState,
  ErrorClassification,
  ErrorKind,
  TxErrorContext,
  TxManagerOptions,
  TxTarget,
  ReplicaHealth,
  ReplicaState,
  TwoPhaseCommitOptions,
  TwoPhaseRunOptions,
  InDoubtTransaction,
  RecoveryResult,
  TwoPhaseStep,
} from './db/index.js';
export type { UserStatus } from './users/user-model.js';
export type { UserRepositoryOptions, ListUsersOptions, UserPage, Executor } from './users/user-repository.js';
export type { NewUser, UserPatch } from './users/user-input.js';
export type { ServerInfo, MigrationStatus, HealthRepositoryOptions } from './health/health-repository.js';
export type { StartOptions, RunningService } from './app.js';
export type { AuthUser } from './http/auth/auth-user.js';
export type { RegisterAuthOptions } from './http/auth/register-auth.js';
export type { JwtVerifier, JwtAlgorithm } from './http/auth/jwt-verifier.js';
export type { Scope } from './http/auth/scopes.js';
export type { AuthFailureReason } from './http/auth/auth-errors.js';
export type { AuditAction, AuditContext, AuditEntry, AuditRecord } from './audit/audit-repository.js';
export type { KnexfileOptions, DirectoryRef } from './db/migrations/define-knexfile.js';
export type { TxHooks, TxRetryInfo, TxStatementInfo, TxEndInfo } from './db/index.js';
