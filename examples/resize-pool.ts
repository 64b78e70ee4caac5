// Resizes a running pool: waiters are served at once when it grows; when it shrinks, idle
// connections close at once and busy ones as they are released. No caller sees an error.
// Run from the repository root: LOG_LEVEL=warn npx tsx examples/resize-pool.ts
// With no database configured it uses the embedded server of `npm start` (started, then stopped
// again, if it is not running); set DATABASE_URL, or DB_HOST, DB_PASSWORD, ..., to use your own.
import { loadConfig, createLogger, PostgresDatabase, prepareMigrationTarget } from '../src/index.js';

const config = loadConfig();
const logger = createLogger(config.log);
const target = await prepareMigrationTarget(config, { logger });
const db = new PostgresDatabase(target.config.database.postgres, logger);
db.resizePool({ maxOpenConns: 2, maxIdleConns: 2 }); // whatever the configuration said
await db.connect(AbortSignal.timeout(30_000));
const pool = () => {
  const { maxOpenConnections, openConnections, inUse, idle, pendingAcquires } = db.getConnectionStats();
  return { maxOpenConnections, openConnections, inUse, idle, pendingAcquires };
};

const until = async (done: () => boolean) => {
  while (!done()) await new Promise((r) => setTimeout(r, 5));
};

// Eight 1 s transactions on a pool of two: six wait.
const work = Array.from({ length: 8 }, () => db.withTransaction((trx) => trx.raw('select pg_sleep(1)')));
await until(() => pool().inUse === 2);
console.log('size 2:', pool()); // { maxOpenConnections: 2, inUse: 2, pendingAcquires: 6, ... }
db.resizePool({ maxOpenConns: 6 }); // four more connections open now, for four of the waiters
await until(() => pool().inUse === 6);
console.log('grown to 6:', pool()); // { maxOpenConnections: 6, inUse: 6, pendingAcquires: 2, ... }
db.resizePool({ maxOpenConns: 1 }); // nothing in use is closed; each one released over the size is
await Promise.all(work);
console.log('shrunk to 1:', pool()); // { maxOpenConnections: 1, openConnections: 1, idle: 1, ... }

try {
  db.resizePool({ maxOpenConns: 2, maxIdleConns: 3 });
} catch (err) {
  console.log((err as Error).message); // ConfigError: ... resizePool: maxIdleConns (3) must not exceed maxOpenConns (2).
}
await db.disconnect();
await target.stop();
