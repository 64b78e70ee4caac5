export * from './database.js';
export * from './errors/errors.js';
export { PostgresDatabase } from './postgres-database.js';
export { namedStatementsAllowed } from './connection/pg-connection-config.js';
export { TxManager } from './tx/tx-manager.js';
export { EmbeddedServer } from './embedded/embedded-server.js';
export { currentTransaction, executorFor, type Executor } from './tx/tx-context.js';
export { classifyError, type ErrorClassification, type ErrorKind } from './errors/classify-error.js';
export { BaseModel } from './base-model.js';
export {
  knexMigrationConfig,
  migratorConfig,
  MIGRATIONS_DIRECTORY,
  MIGRATIONS_TABLE,
  MIGRATION_LOAD_EXTENSIONS,
} from './migrations/migrations-config.js';
export { prepareMigrationTarget } from './migrations/migration-target.js';
export { isTransient, classifyTxError, type TxErrorContext } from './errors/classify-error.js';
export { translateError } from './errors/translate-error.js';
export { runStatement, withDriverConnection, type PreparedStatementText } from './knex-internals.js';
export { retryAfterFailure } from './tx/tx-runner.js';
export { withTimeout } from './with-timeout.js';
export type { TxManagerOptions } from './tx/tx-manager.js';
export { CircuitBreaker } from './circuit-breaker.js';
export type { PoolSize } from './pool/pool-resizer.js';
export { attachQueryLogger } from './query-logger.js';
export type { TxHooks, TxRetryInfo, TxStatementInfo, TxEndInfo } from './tx/tx-hooks.js';
export {
  TwoPhaseCommit,
  type TwoPhaseCommitOptions,
  type TwoPhaseRunOptions,
  type InDoubtTransaction,
  type RecoveryResult,
} from './two-phase/two-phase-commit.js';
