/**
 * `npx tsx bench/tx-profile.ts`: where a write transaction's time goes, per stack. Counts the
 * statements each stack sends to the server per transaction (pg-level: every
 * `pg.Client#query`, so knex's BEGIN/COMMIT and our own internal statements count too) and
 * times the stacks one after another with the same concurrency as `npm run bench`.
 *
 * Knobs: BENCH_OPS (transactions per stack, default 3000), BENCH_CONCURRENCY (default 8),
 * BENCH_ONLY (a regular expression: run the stacks whose names match, e.g. `BENCH_ONLY=TxManager`: with
 * `node --cpu-prof --import tsx bench/tx-profile.ts` the profile then shows that stack alone),
 * BENCH_DATABASE_URL (else a throwaway embedded server).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import knexFactory from 'knex';
import pino from 'pino';
import { PostgresDatabase } from '../src/db/postgres-database.js';
import { TxManager } from '../src/db/tx/tx-manager.js';
import { benchConfig, benchServer, BENCH_POOL } from './bench-setup.js';
import { measure } from './bench-harness.js';

const OPS = Number(process.env.BENCH_OPS ?? 3000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const ONLY = process.env.BENCH_ONLY;

/** Statement texts sent through any pg Client since the last reset. */
const sent: string[] = [];
const clientProto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
const originalQuery = clientProto.query;
clientProto.query = function (this: unknown, ...args: unknown[]) {
  const q = args[0] as string | { text?: string };
  sent.push((typeof q === 'string' ? q : (q?.text ?? '?')).replace(/\s+/g, ' ').slice(0, 60));
  return originalQuery.apply(this, args);
};

// Promise hooks on for every stack alike (see run.ts).
new AsyncLocalStorage<true>().enterWith(true);
const { url, stop } = await benchServer();
const rawPool = new pg.Pool({ connectionString: url, max: BENCH_POOL });
rawPool.on('error', () => {});
const knex = knexFactory({ client: 'pg', connection: url, pool: { min: BENCH_POOL, max: BENCH_POOL } });
const logger = pino({ level: 'silent' });
const db = new PostgresDatabase(benchConfig(url), logger);
await db.connect();
const tx = new TxManager(db, logger);
const txNoLookup = new TxManager(db, logger, { transactions: { resolveLostCommit: false } });
try {
  await rawPool.query('create table if not exists bench_log (id bigserial primary key, note text not null)');
  const stacks: Array<[string, () => Promise<unknown>]> = [
    [
      'raw pg BEGIN/INSERT/COMMIT',
      async () => {
        const c = await rawPool.connect();
        try {
          await c.query('begin');
          await c.query('insert into bench_log (note) values ($1)', ['x']);
          await c.query('commit');
        } finally {
          c.release();
        }
      },
    ],
    [
      'knex.transaction (plain knex)',
      () => knex.transaction((trx) => trx('bench_log').insert({ note: 'x' })),
    ],
    [
      'knex.transaction (PostgresDatabase.driver())',
      () => db.driver().transaction((trx) => trx('bench_log').insert({ note: 'x' })),
    ],
    ['TxManager.withTransaction', () => tx.withTransaction((trx) => trx('bench_log').insert({ note: 'x' }))],
    [
      'TxManager.withTransaction, timeoutMs 5000',
      () => tx.withTransaction((trx) => trx('bench_log').insert({ note: 'x' }), { timeoutMs: 5_000 }),
    ],
    [
      'TxManager.withTransaction, resolveLostCommit false',
      () => txNoLookup.withTransaction((trx) => trx('bench_log').insert({ note: 'x' })),
    ],
    [
      'TxManager.withTransaction, read only select',
      () => tx.withReadOnlyTransaction((trx) => trx.raw('select 1')),
    ],
  ];
  console.log('| stack | statements per tx | what is sent | ops/s | client CPU µs/tx |');
  console.log('|---|---:|---|---:|---:|');
  for (const [name, op] of stacks) {
    if (ONLY && !new RegExp(ONLY).test(name)) continue;
    await op(); // the first use of a knex instance also asks for the server version
    sent.length = 0;
    await op();
    const one = [...sent];
    const r = await measure(name, op, { ops: OPS, concurrency: CONCURRENCY });
    console.log(
      `| ${name} | ${one.length} | ${one.join(' / ')} | ${r.opsPerSec.toFixed(0)} | ${r.cpuUsPerOp.toFixed(0)} |`,
    );
  }
} finally {
  clientProto.query = originalQuery;
  await db.close();
  await knex.destroy();
  await rawPool.end();
  await stop();
}
