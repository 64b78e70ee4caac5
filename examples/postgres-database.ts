// Opens a PostgresDatabase, runs one query, prints the pool statistics and a health report.
// Run from the repository root: LOG_LEVEL=warn npx tsx examples/postgres-database.ts
// With no database configured it uses the embedded server of `npm start` (started, then stopped
// again, if it is not running); set DATABASE_URL, or DB_HOST, DB_PASSWORD, ..., to use your own.
import { loadConfig, createLogger, Metrics, PostgresDatabase, prepareMigrationTarget } from '../src/index.js';

const config = loadConfig();
const logger = createLogger(config.log);
const target = await prepareMigrationTarget(config, { logger }); // a no-op when a host is configured
const metrics = new Metrics();
const db = new PostgresDatabase(target.config.database.postgres, logger, {
  metrics, // optional; a private Metrics otherwise
  transactions: config.database.transactions, // forwarded to TxManager
  // breaker: circuitBreaker,                // health() reports its state ('closed' if absent)
  // captureAcquireStacks: true,             // leak detection: stacks in PoolExhaustedError.holders
});

await db.connect(AbortSignal.timeout(30_000)); // retries transient failures, then proves the pool
const { rows } = await db.driver().raw<{ rows: Array<{ now: Date }> }>('select now() as now');
console.log(rows[0]?.now, db.getConnectionStats(), await db.health());
// health(): { status: 'up', latencyMs: 34.8, server: { version: 'PostgreSQL 18.4', inRecovery: false }, pool: {...}, breaker: 'closed' }
await db.disconnect(); // refuses new work, drains, closes
await target.stop(); // stops the embedded server only if this script started it
