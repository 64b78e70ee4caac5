// The public API in one script: configuration, logger, database, a retried serializable
// transaction that a repository joins, optimistic locking, a graceful disconnect.
// Run from the repository root: npm run db:migrate && LOG_LEVEL=warn npx tsx examples/quick-start.ts
import {
  loadConfig,
  createLogger,
  prepareMigrationTarget,
  PostgresDatabase,
  UserRepository,
  OptimisticLockError,
} from '../src/index.js';

const config = loadConfig(); // defaults < config/*.yaml < .env/environment < DATABASE_URL
const logger = createLogger(config.log);
// With no host configured this starts the embedded server (or reuses a running one).
const target = await prepareMigrationTarget(config, { logger });
const pgConfig = target.config.database.postgres;

const db = new PostgresDatabase(pgConfig, logger, { transactions: config.database.transactions });
await db.connect(); // retries transient failures with backoff + jitter
const tx = db.txManager; // the database's TxManager (withTransaction, withReadOnlyTransaction, withTimeout, current)
const users = new UserRepository(db.driver());

// The users table comes from the migrations: `npm run db:migrate` (or `npm start` once) first.
const user = await tx.withTransaction(
  async () => {
    // No trx passed: the repository joins the ambient transaction.
    const created = await users.upsertByEmail({ email: `ada+${Date.now()}@example.com`, name: 'Ada' });
    return users.update(created.user.id, { name: 'Ada Lovelace' }, created.user.version);
  },
  { isolationLevel: 'serializable', timeoutMs: 2_000 }, // retried on 40001/40P01, cancelled at 2 s
);
console.log(user.toJSON(), db.getConnectionStats());

try {
  await users.update(user.id, { name: 'stale' }, user.version - 1);
} catch (err) {
  if (err instanceof OptimisticLockError) console.log('version moved:', err.message);
}
await db.disconnect(); // drains in-flight work, then closes
await target.stop(); // stops the embedded server only if this script started it
