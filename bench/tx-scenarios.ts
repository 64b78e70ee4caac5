import type { Knex } from 'knex';
import type pg from 'pg';
import { TxManager, type PostgresDatabase } from '../src/db/index.js';
import type { Scenario } from './bench-harness.js';

/** Rows of `bench_accounts`. Transactions started together touch different rows, so none waits on another's row lock. */
export const ACCOUNTS = 10_000;

/** The row transaction `i` reads and updates. */
export const accountOf = (i: number): number => (i % ACCOUNTS) + 1;

/** Creates (or refills) `bench_accounts`: ACCOUNTS rows with balance 0. */
export async function createAccounts(pool: pg.Pool): Promise<void> {
  await pool.query(
    'create table if not exists bench_accounts (id integer primary key, balance integer not null)',
  );
  await pool.query('truncate bench_accounts');
  await pool.query(`insert into bench_accounts select g, 0 from generate_series(1, ${ACCOUNTS}) g`);
  await pool.query('vacuum analyze bench_accounts');
}

/** The body every knex-based stack runs: SELECT ... FOR UPDATE, then UPDATE from the value read. */
export async function readModifyWrite(trx: Knex | Knex.Transaction, id: number): Promise<void> {
  const rows = (await trx('bench_accounts').select('id', 'balance').where('id', id).forUpdate()) as Array<{
    balance: number;
  }>;
  await trx('bench_accounts')
    .where('id', id)
    .update({ balance: rows[0]!.balance + 1 });
}

/** The two statements `readModifyWrite` sends, as knex compiles them (raw pg sends exactly these). */
export interface RmwSql {
  select: string;
  update: string;
}

/**
 * Learns the SQL of `readModifyWrite` from knex's `query` event, so raw pg sends the very same
 * text. Throws when the shape changed (other statements, other bind order), so raw pg never
 * silently measures something else.
 */
export async function captureRmwSql(knex: Knex): Promise<RmwSql> {
  const sent: Array<{ sql: string; bindings: readonly unknown[] }> = [];
  const onQuery = (q: { sql: string; bindings?: readonly unknown[] }): void =>
    void sent.push({ sql: q.sql, bindings: q.bindings ?? [] });
  knex.on('query', onQuery);
  try {
    await readModifyWrite(knex, 7);
  } finally {
    knex.off('query', onQuery);
  }
  const [select, update] = sent;
  if (
    sent.length !== 2 ||
    !select ||
    !update ||
    !/^select .* for update$/.test(select.sql) ||
    JSON.stringify(select.bindings) !== '[7]' ||
    !/^update /.test(update.sql) ||
    update.bindings[1] !== 7
  )
    throw new Error(`readModifyWrite no longer sends what raw pg mirrors: ${JSON.stringify(sent)}`);
  return { select: select.sql, update: update.sql };
}

/** Names of the transaction group's rows, in table order; the first is the baseline. */
export const TX_ROWS = {
  raw: 'raw pg: BEGIN / SELECT FOR UPDATE / UPDATE / COMMIT (pg.Pool)',
  knex: 'bare knex.transaction (db.driver())',
  managerNoXid: 'TxManager.withTransaction, resolveLostCommit: false (same statements as knex)',
  manager: 'TxManager.withTransaction, default (xid taken with BEGIN)',
  managerTimeout: 'TxManager.withTransaction, timeoutMs 5000 (xid and set_config with BEGIN)',
} as const;

type Logger = ConstructorParameters<typeof TxManager>[1];

/**
 * The read-modify-write transaction through each stack, with the same statements: raw pg on a
 * pg.Pool, bare `knex.transaction` on the database's own knex, and TxManager (opt-out of the
 * xid statement, default, with a timeout) on the same database. Only the public API is used.
 */
export function txScenarios(deps: {
  rawPool: pg.Pool;
  db: PostgresDatabase;
  logger: Logger;
  sql: RmwSql;
}): Scenario[] {
  const { rawPool, db, logger, sql } = deps;
  const knex = db.driver();
  const noXid = new TxManager(db, logger, { transactions: { resolveLostCommit: false } });
  const manager = new TxManager(db, logger);
  return [
    {
      name: TX_ROWS.raw,
      op: async (i) => {
        const id = accountOf(i);
        const c = await rawPool.connect();
        try {
          await c.query('begin');
          const { rows } = await c.query<{ balance: number }>(sql.select, [id]);
          await c.query(sql.update, [rows[0]!.balance + 1, id]);
          await c.query('commit');
        } catch (err) {
          await c.query('rollback').catch(() => {});
          throw err;
        } finally {
          c.release();
        }
      },
    },
    { name: TX_ROWS.knex, op: (i) => knex.transaction((trx) => readModifyWrite(trx, accountOf(i))) },
    {
      name: TX_ROWS.managerNoXid,
      op: (i) => noXid.withTransaction((trx) => readModifyWrite(trx, accountOf(i))),
    },
    {
      name: TX_ROWS.manager,
      op: (i) => manager.withTransaction((trx) => readModifyWrite(trx, accountOf(i))),
    },
    {
      name: TX_ROWS.managerTimeout,
      op: (i) => manager.withTransaction((trx) => readModifyWrite(trx, accountOf(i)), { timeoutMs: 5_000 }),
    },
  ];
}
