// One unit of work across two databases with two-phase commit: both commit or neither does.
// Run from the repository root: LOG_LEVEL=warn npx tsx examples/two-phase-commit.ts
// With no database configured it uses the embedded server of `npm start` (which sets
// max_prepared_transactions; a server started before that setting existed needs a restart).
// It creates databases `pgdl_example_orders` and `pgdl_example_billing` and drops them at the end.
import {
  loadConfig,
  createLogger,
  PostgresDatabase,
  TwoPhaseCommit,
  TwoPhaseAbortedError,
  prepareMigrationTarget,
} from '../src/index.js';

const config = loadConfig();
const logger = createLogger(config.log);
const target = await prepareMigrationTarget(config, { logger }); // a no-op when a host is configured
const admin = new PostgresDatabase(target.config.database.postgres, logger);
await admin.connect();
const names = ['pgdl_example_orders', 'pgdl_example_billing'];
for (const name of names) await admin.driver().raw(`create database ${name}`);

// The loaded config keeps the password non-enumerable (a spread drops it): pass it on explicitly.
const pg = target.config.database.postgres;
const [orders, billing] = names.map(
  (name) => new PostgresDatabase({ ...pg, password: pg.password, name }, logger),
) as [PostgresDatabase, PostgresDatabase];
await Promise.all([orders.connect(), billing.connect()]);
await orders.driver().raw('create table orders (id int primary key, total int not null)');
await billing.driver().raw('create table invoices (order_id int primary key, total int not null)');

// The coordinator keeps the decision records (table pgdl_two_phase_decisions, created on first use).
const tpc = new TwoPhaseCommit({ orders, billing }, { logger, coordinator: orders });
await tpc.recover(); // at start: resolve what a crashed process left in doubt

await tpc.run(async (trx) => {
  await trx.orders!('orders').insert({ id: 1, total: 42 });
  await trx.billing!('invoices').insert({ order_id: 1, total: 42 });
});

// A failure in either database before the decision rolls back both.
try {
  await tpc.run(async (trx) => {
    await trx.orders!('orders').insert({ id: 2, total: 7 });
    await trx.billing!('invoices').insert({ order_id: 1, total: 7 }); // duplicate key
  });
} catch (err) {
  // The callback's own error (UniqueViolationError here); a failure at PREPARE would be a
  // TwoPhaseAbortedError naming the participant.
  const what = err instanceof TwoPhaseAbortedError ? `participant ${err.participant}` : (err as Error).name;
  console.log('second unit rolled back everywhere:', what);
}

const count = async (db: PostgresDatabase, table: string): Promise<number> =>
  Number((await db.driver()(table).count({ n: '*' }).first<{ n: string }>()).n);
console.log('orders:', await count(orders, 'orders'), 'invoices:', await count(billing, 'invoices')); // 1 and 1
console.log('in doubt:', await tpc.inDoubt()); // []

await Promise.all([orders.close(), billing.close()]);
for (const name of names) await admin.driver().raw(`drop database ${name}`);
await admin.close();
await target.stop(); // stops the embedded server only if this script started it
