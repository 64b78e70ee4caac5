// A process-wide retry budget through TxManager hooks: at most one retry per second.
// Run from the repository root: npx tsx examples/retry-budget.ts
// With no database configured it uses the embedded server of `npm start` (started, then stopped
// again, if it is not running). It creates a table `hits` and drops it at the end.
import {
  loadConfig,
  createLogger,
  PostgresDatabase,
  SerializationError,
  prepareMigrationTarget,
} from '../src/index.js';

const config = loadConfig();
const logger = createLogger(config.log);
const target = await prepareMigrationTarget(config, { logger }); // a no-op when a host is configured
const db = new PostgresDatabase(target.config.database.postgres, logger);
await db.connect();

// A process-wide retry budget: at most one retry per second across every transaction.
let nextRetryAt = 0;
const removeBudget = db.txManager.addHooks({
  beforeRetry: ({ reason, attempt }) => {
    const now = Date.now();
    if (now < nextRetryAt) return false; // over budget: this caller gets the error now
    nextRetryAt = now + 1_000;
    logger.info({ reason, attempt }, 'retry budget spent');
  },
});

const knex = db.driver();
await knex.raw('create table if not exists hits (id int primary key, n int not null)');
await knex.raw('insert into hits values (1, 0) on conflict (id) do nothing');
// Ten read-modify-writes of one row at once: serializable turns the lost updates into 40001s.
const results = await Promise.allSettled(
  Array.from({ length: 10 }, () =>
    db.withTransaction(
      async (trx) => {
        const { n } = await trx('hits').where({ id: 1 }).first<{ n: number }>();
        await trx('hits')
          .where({ id: 1 })
          .update({ n: n + 1 });
      },
      { isolationLevel: 'serializable' },
    ),
  ),
);
const shed = results.filter((r) => r.status === 'rejected' && r.reason instanceof SerializationError);
console.log({ committed: results.length - shed.length, shedByBudget: shed.length });
removeBudget();
await knex.raw('drop table hits');
await db.disconnect();
await target.stop(); // stops the embedded server only if this script started it
// Printed here: { committed: 4, shedByBudget: 6 } (it varies), one 'retry budget spent' line,
// and one error line per shed transaction with retryVetoed: true.
