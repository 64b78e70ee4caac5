/**
 * A two-phase commit coordinator in a process of its own, for tests that kill it with SIGKILL
 * at a chosen point (`test/integration/db/two-phase/`). It runs one unit of work inserting row
 * `ROW_ID` into `ledger` on participants `a` and `b`, and freezes (the event loop blocked, so
 * nothing more is sent) at `FREEZE_AT`:
 *
 * - `before-decision`: every participant prepared, the decision's COMMIT about to be sent;
 * - `after-decision`: the decision committed, the first COMMIT PREPARED about to be sent.
 *
 * It prints `FROZEN` on stdout when frozen. Environment: `PARTICIPANT_A_URL`, `PARTICIPANT_B_URL`,
 * `COORDINATOR_URL`, `FREEZE_AT`, `ROW_ID`. No hook in the product: the freeze listens on knex's
 * `query` event, which knex emits synchronously just before it sends a statement.
 */
import { writeSync } from 'node:fs';
import pino from 'pino';
import { PostgresDatabase } from '../../src/db/postgres-database.js';
import { TwoPhaseCommit } from '../../src/db/two-phase/two-phase-commit.js';
import { postgresConfigFromUrl } from './test-database.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const logger = pino({ level: 'silent' });
const open = (url: string): PostgresDatabase =>
  new PostgresDatabase({ ...postgresConfigFromUrl(new URL(url)), maxOpenConns: 4 }, logger);

const a = open(env('PARTICIPANT_A_URL'));
const b = open(env('PARTICIPANT_B_URL'));
const coordinator = open(env('COORDINATOR_URL'));
const freezeAt = env('FREEZE_AT');
const rowId = Number(env('ROW_ID'));

function freeze(): void {
  writeSync(1, 'FROZEN\n');
  // Blocks this thread for good: the parent kills the process here.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
}

await Promise.all([a.connect(), b.connect(), coordinator.connect()]);
if (freezeAt === 'before-decision')
  coordinator.driver().on('query', (q: { sql: string }) => {
    if (q.sql === 'COMMIT;') freeze();
  });
else if (freezeAt === 'after-decision')
  for (const db of [a, b])
    db.driver().on('query', (q: { sql: string }) => {
      if (q.sql.startsWith('COMMIT PREPARED')) freeze();
    });
else throw new Error(`FREEZE_AT must be before-decision or after-decision, not ${freezeAt}`);

const tpc = new TwoPhaseCommit({ a, b }, { logger, coordinator });
await tpc.run(async (trx) => {
  await trx.a!('ledger').insert({ id: rowId, note: 'a' });
  await trx.b!('ledger').insert({ id: rowId, note: 'b' });
});
throw new Error('the unit of work finished: the freeze point was never reached');
