export * from './database.js';
export * from './errors.js';
export { PostgresDatabase } from './postgres-database.js';
export { TxManager } from './tx-manager.js';
export { EmbeddedServer, type EmbeddedServerOptions } from './embedded-postgres.js';
export { currentTransaction, executorFor, type Executor } from './tx-context.js';
export { classifyError, type ErrorClassification, type ErrorKind } from './classify-error.js';
export { BaseModel } from './base-model.js';
export {
  knexMigrationConfig,
  migratorConfig,
  seederConfig,
  assertSeedingAllowed,
  MIGRATIONS_DIRECTORY,
  MIGRATIONS_TABLE,
  MIGRATION_LOAD_EXTENSIONS,
  SEEDS_ROOT,
  SEEDABLE_PROFILES,
  type MigrationKnexConfig,
} from './migrations-config.js';
export { prepareMigrationTarget, type MigrationTarget } from './migration-target.js';
export { isTransient, classifyTxError, type TxErrorContext } from './classify-error.js';
export { translateError } from './translate-error.js';
export type { TxManagerOptions } from './tx-manager.js';
export { CircuitBreaker } from './circuit-breaker.js';
export { attachQueryLogger, type QueryLogConfig } from './query-logger.js';
export { EMBEDDED_FALLBACK_PASSWORD } from './migration-target.js';
export type { TxHooks, TxRetryInfo, TxStatementInfo, TxEndInfo } from './tx-hooks.js';
