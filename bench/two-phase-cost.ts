/**
 * A quick measurement, not a benchmark of record: what a two-phase unit of work over two
 * databases costs against two independent transactions doing the same writes, on a dedicated
 * embedded server (loopback, one insert per database):
 *
 * - statements per unit of work, by database, counted from knex's `query` event (node-postgres
 *   sends one statement per round trip, so this is the round-trip count; the transactions'
 *   xid lookup before COMMIT included);
 * - latency, sequential, median and p95: independent transactions one after the other and in
 *   parallel, and `TwoPhaseCommit.run()` with the coordinator as one of the participants and as
 *   a third database.
 *
 * Run: `npx tsx bench/two-phase-cost.ts [units]` (default 500).
 */
import { performance } from 'node:perf_hooks';
import type { Knex } from 'knex';
import pino from 'pino';
import { PostgresDatabase } from '../src/db/postgres-database.js';
import { TwoPhaseCommit } from '../src/db/two-phase/two-phase-commit.js';
import { startDedicatedServer } from '../test/support/embedded-test-server.js';
import { queryOnce } from '../test/support/query-once.js';
import { postgresConfigFromUrl } from '../test/support/test-database.js';

const silent = pino({ level: 'silent' });
const N = Number(process.argv[2] ?? 500);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

async function main(): Promise<void> {
  const server = await startDedicatedServer();
  const dbs: PostgresDatabase[] = [];
  try {
    for (const name of ['bench_a', 'bench_b', 'bench_c']) {
      await queryOnce(server.url(), `create database ${name}`);
      await queryOnce(server.url(name), 'create table items (id bigserial primary key, v int not null)');
    }
    const open = async (name: string): Promise<PostgresDatabase> => {
      const db = new PostgresDatabase(
        { ...postgresConfigFromUrl(new URL(server.url(name))), maxOpenConns: 4 },
        silent,
      );
      await db.connect();
      dbs.push(db);
      return db;
    };
    const [a, b, c] = [await open('bench_a'), await open('bench_b'), await open('bench_c')];
    const counts = new Map<PostgresDatabase, number>();
    for (const db of [a, b, c]) db.driver().on('query', () => counts.set(db, (counts.get(db) ?? 0) + 1));
    const insert = (trx: Knex.Transaction): Promise<unknown> => trx('items').insert({ v: 1 }).then();

    const tpcSelf = new TwoPhaseCommit({ a, b }, { logger: silent, coordinator: a });
    const tpcThird = new TwoPhaseCommit({ a, b }, { logger: silent, coordinator: c });
    const scenarios: Array<[string, () => Promise<unknown>]> = [
      [
        '2 independent transactions, sequential',
        async () => {
          await a.withTransaction(insert);
          await b.withTransaction(insert);
        },
      ],
      [
        '2 independent transactions, parallel',
        () => Promise.all([a.withTransaction(insert), b.withTransaction(insert)]),
      ],
      [
        'TwoPhaseCommit.run(), coordinator = participant a',
        () =>
          tpcSelf.run(async (trx) => {
            await Promise.all([insert(trx.a!), insert(trx.b!)]);
          }),
      ],
      [
        'TwoPhaseCommit.run(), coordinator = third database',
        () =>
          tpcThird.run(async (trx) => {
            await Promise.all([insert(trx.a!), insert(trx.b!)]);
          }),
      ],
    ];
    console.log(`${N} units of work each, sequential; one insert per database\n`);
    console.log('| scenario | statements a / b / coordinator | median ms | p95 ms |');
    console.log('|---|---|---|---|');
    for (const [label, run] of scenarios) {
      for (let i = 0; i < 50; i++) await run(); // warm-up (and the first run's setup)
      counts.clear();
      const times: number[] = [];
      for (let i = 0; i < N; i++) {
        const t0 = performance.now();
        await run();
        times.push(performance.now() - t0);
      }
      times.sort((x, y) => x - y);
      const per = (db: PostgresDatabase): string => ((counts.get(db) ?? 0) / N).toFixed(1);
      console.log(
        `| ${label} | ${per(a)} / ${per(b)} / ${label.includes('third') ? per(c) : '-'} | ${percentile(times, 0.5).toFixed(2)} | ${percentile(times, 0.95).toFixed(2)} |`,
      );
    }
  } finally {
    await Promise.all(dbs.map((db) => db.close()));
    await server.destroy();
  }
}

await main();
