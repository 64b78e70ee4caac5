export * from './database.js';
export * from './errors.js';
export { PostgresDatabase } from './postgres-database.js';
export { TxManager } from './tx-manager.js';
export { EmbeddedServer, type EmbeddedServerOptions } from './embedded-postgres.js';
export { currentTransaction, executorFor } from './tx-context.js';
export { classifyError, type ErrorClassification, type ErrorKind } from './classify-error.js';
