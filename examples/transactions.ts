// Moves money between two accounts in a serializable transaction, then writes through the
// ambient transaction. Run from the repository root: LOG_LEVEL=warn npx tsx examples/transactions.ts
// With no database configured it uses the embedded server of `npm start` (started, then stopped
// again, if it is not running). It creates tables `accounts` and `notes` and drops them at the end.
import {
  loadConfig,
  createLogger,
  PostgresDatabase,
  executorFor,
  prepareMigrationTarget,
} from '../src/index.js';

const config = loadConfig();
const logger = createLogger(config.log);
const target = await prepareMigrationTarget(config, { logger }); // a no-op when a host is configured
const db = new PostgresDatabase(target.config.database.postgres, logger, {
  transactions: config.database.transactions, // retry/timeout defaults of db.txManager
});
await db.connect();
// The database's own manager: its replicas, metrics, tracing and defaults (no second manager needed).
const tx = db.txManager;

const knex = db.driver();
await knex.raw('create table accounts (id int primary key, balance int not null)');
await knex.raw('create table notes (id serial primary key, body text not null)');
await knex('accounts').insert([
  { id: 1, balance: 100 },
  { id: 2, balance: 0 },
]);

// Move money; re-run on serialization failures; give up after 2 s in all.
const balance = await tx.withTransaction(
  async (trx) => {
    const from = await trx('accounts').where({ id: 1 }).first<{ balance: number }>();
    if (from.balance < 10) throw new Error('insufficient funds'); // rolled back, never retried
    await trx('accounts').where({ id: 1 }).decrement('balance', 10);
    await trx('accounts').where({ id: 2 }).increment('balance', 10);
    return from.balance - 10;
  },
  { isolationLevel: 'serializable', timeoutMs: 2_000 },
);

// A repository call with no explicit trx joins the ambient transaction:
const addNote = (body: string) => executorFor(db.driver())('notes').insert({ body });
await tx.withTransaction(async () => {
  await addNote('written with the transaction'); // rolled back if the callback throws
});

// Session settings for one transaction only (row-level security, audit triggers), sent with BEGIN:
const tenant = await tx.withTransaction(
  async (trx) =>
    (await trx.raw<{ rows: [{ tenant: string }] }>("select current_setting('app.tenant_id') as tenant"))
      .rows[0].tenant,
  { settings: { 'app.tenant_id': '42' } },
);
console.log({ balance, tenant, notes: await knex('notes').count<[{ count: string }]>('* as count') });

await knex.raw('drop table accounts, notes');
await db.disconnect();
await target.stop(); // stops the embedded server only if this script started it
// Printed: { balance: 90, tenant: '42', notes: [ { count: '1' } ] }
