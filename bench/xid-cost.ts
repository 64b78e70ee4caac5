/**
 * `npx tsx bench/xid-cost.ts`: what taking the xid with BEGIN costs a read-write transaction
 * that writes nothing (it then has an xid, so its COMMIT writes a commit record and waits for
 * its WAL flush), against `resolveLostCommit: false` (no xid), in alternating rounds on one
 * throwaway embedded PostgreSQL; and how many xids and WAL bytes each spent.
 * Knobs: BENCH_OPS (default 3000), BENCH_ROUNDS (default 3), 8 in flight.
 */
import pino from 'pino';
import pg from 'pg';
import { PostgresDatabase } from '../src/db/index.js';
import { TxManager } from '../src/db/tx/tx-manager.js';
import { benchConfig, benchDatabase, benchServer } from './bench-setup.js';

const OPS = Number(process.env.BENCH_OPS ?? 3000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const IN_FLIGHT = 8;
const logger = pino({ level: 'silent' });

const server = await benchServer();
const { url, drop } = await benchDatabase(server.url);
const db = new PostgresDatabase(
  benchConfig(url, { maxOpenConns: IN_FLIGHT, maxIdleConns: IN_FLIGHT }),
  logger,
);
const admin = new pg.Client({ connectionString: url });
await admin.connect();
const stacks = {
  'xid with BEGIN (default)': new TxManager(db, logger),
  'no xid (resolveLostCommit: false)': new TxManager(db, logger, {
    transactions: { resolveLostCommit: false },
  }),
};
const probe = async (): Promise<{ xid: bigint; wal: string }> => {
  const { rows } = await admin.query<{ xid: string; wal: string }>(
    'select pg_snapshot_xmax(pg_current_snapshot())::text as xid, pg_current_wal_insert_lsn()::text as wal',
  );
  return { xid: BigInt(rows[0]!.xid), wal: rows[0]!.wal };
};
const results = new Map<string, Array<{ tps: number; xids: bigint; walBytes: number }>>();
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, tm] of Object.entries(stacks)) {
    const before = await probe();
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next++ < OPS) await tm.withTransaction((trx) => trx.raw('select 1'));
      }),
    );
    const ms = performance.now() - started;
    const after = await probe();
    const { rows } = await admin.query<{ bytes: string }>('select pg_wal_lsn_diff($1, $2)::text as bytes', [
      after.wal,
      before.wal,
    ]);
    const list = results.get(name) ?? [];
    list.push({ tps: (OPS / ms) * 1000, xids: after.xid - before.xid, walBytes: Number(rows[0]!.bytes) });
    results.set(name, list);
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `read-write transactions that write nothing (select 1), ${OPS} x ${ROUNDS} rounds, ${IN_FLIGHT} in flight`,
);
console.log('| stack | tx/s (median) | xids used per 1000 tx | WAL bytes per tx |');
console.log('|---|---:|---:|---:|');
for (const [name, list] of results)
  console.log(
    `| ${name} | ${median(list.map((r) => r.tps)).toFixed(0)} | ${Number((list[0]!.xids * 1000n) / BigInt(OPS))} | ${median(list.map((r) => r.walBytes / OPS)).toFixed(0)} |`,
  );
const sync = await admin.query<{ s: string; f: string }>(
  "select current_setting('synchronous_commit') as s, current_setting('fsync') as f",
);
console.log(`synchronous_commit = ${sync.rows[0]!.s}, fsync = ${sync.rows[0]!.f}`);
await admin.end();
await db.close();
await drop();
await server.stop();
