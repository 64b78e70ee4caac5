/**
 * `npm run bench`: throughput of this data layer against raw `pg`, measured in the same run
 * on the same server. Uses BENCH_DATABASE_URL if set, else a throwaway embedded PostgreSQL.
 * Prints markdown tables with ratios against raw pg; targets are read off these, never
 * asserted in tests.
 */
import { mkdtempSync, chmodSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import knexFactory from 'knex';
import { Model } from 'objection';
import pino from 'pino';
import { EmbeddedServer } from '../src/db/embedded-postgres.js';
import { PostgresDatabase } from '../src/db/postgres-database.js';
import { TxManager } from '../src/db/tx-manager.js';
import type { PostgresConfig } from '../src/config/app-config.js';
import { compare, report } from './bench-harness.js';

const OPS = Number(process.env.BENCH_OPS ?? 5000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const POOL = 8;

class Item extends Model {
  static override tableName = 'bench_items';
  id!: number;
  name!: string;
}

async function main(): Promise<void> {
  const { url, stop } = await benchServer();
  const u = new URL(url);
  const cfg: PostgresConfig = {
    host: u.hostname,
    port: Number(u.port || 5432),
    name: u.pathname.slice(1),
    username: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    sslMode: 'disable',
    sslRootCert: '',
    maxOpenConns: POOL,
    maxIdleConns: POOL,
    connMaxLifetime: 0,
    connMaxIdleTime: 60_000,
    timeout: 5_000,
    statementTimeout: 30_000,
    lockTimeout: 10_000,
    idleInTransactionSessionTimeout: 60_000,
    maxRetries: 3,
    retryDelay: 100,
    maxRetryDelay: 1_000,
    healthCheckInterval: 10_000,
    healthCheckTimeout: 2_000,
    drainTimeout: 5_000,
    applicationName: 'pgdl-bench',
    preparedStatements: true,
  };
  const rawPool = new pg.Pool({ connectionString: url, max: POOL });
  // pg#2762: without a listener an idle client's error (the server stopping) crashes the process.
  rawPool.on('error', () => {});
  const knex = knexFactory({ client: 'pg', connection: url, pool: { min: POOL, max: POOL } });
  const logger = pino({ level: 'silent' });
  const db = new PostgresDatabase(cfg, logger);
  await db.connect();
  const tx = new TxManager(db, logger);
  Model.knex(knex);
  try {
    await rawPool.query('drop table if exists bench_items');
    await rawPool.query('create table bench_items (id bigint primary key, name text not null)');
    await rawPool.query(`insert into bench_items select g, 'item ' || g from generate_series(1, 10000) g`);
    await rawPool.query('analyze bench_items');
    const id = (i: number): number => (i % 10000) + 1;
    const sql = 'select id, name from bench_items where id = $1';

    const reads = await compare(
      [
        { name: 'raw pg, unnamed statement', op: (i) => rawPool.query(sql, [id(i)]) },
        {
          name: 'raw pg, named prepared statement',
          op: (i) => rawPool.query({ name: 'bench_get', text: sql, values: [id(i)] }),
        },
        { name: 'knex builder', op: (i) => knex('bench_items').select('id', 'name').where('id', id(i)) },
        {
          name: 'knex builder, named (.options({ name }))',
          op: (i) =>
            knex('bench_items').select('id', 'name').where('id', id(i)).options({ name: 'bench_get_knex' }),
        },
        { name: 'objection findById', op: async (i) => await Item.query().findById(id(i)) },
        {
          name: 'PostgresDatabase.driver() builder',
          op: (i) => db.driver()('bench_items').select('id', 'name').where('id', id(i)),
        },
      ],
      opts(),
    );
    report(
      `Point reads by primary key (${OPS} ops, ${CONCURRENCY} in flight, pool ${POOL})`,
      reads,
      reads[0]!,
    );

    await rawPool.query(
      'create table if not exists bench_log (id bigserial primary key, note text not null)',
    );
    const txs = await compare(
      [
        {
          name: 'raw pg BEGIN/INSERT/COMMIT',
          op: async () => {
            const c = await rawPool.connect();
            try {
              await c.query('begin');
              await c.query('insert into bench_log (note) values ($1)', ['x']);
              await c.query('commit');
            } finally {
              c.release();
            }
          },
        },
        {
          name: 'knex.transaction',
          op: () => knex.transaction((trx) => trx('bench_log').insert({ note: 'x' })),
        },
        {
          name: 'TxManager.withTransaction',
          op: () => tx.withTransaction((trx) => trx('bench_log').insert({ note: 'x' })),
        },
      ],
      opts(),
    );
    report(`Write transactions (${OPS} ops, ${CONCURRENCY} in flight)`, txs, txs[0]!);
    const mem = process.memoryUsage();
    console.log(
      `\npeak-ish memory: rss ${(mem.rss / 2 ** 20).toFixed(0)} MiB, heap used ${(mem.heapUsed / 2 ** 20).toFixed(0)} MiB`,
    );
  } finally {
    await db.close();
    await knex.destroy();
    await rawPool.end();
    await stop();
  }
}

function opts(): { ops: number; concurrency: number } {
  return { ops: OPS, concurrency: CONCURRENCY };
}

async function benchServer(): Promise<{ url: string; stop: () => Promise<void> }> {
  if (process.env.BENCH_DATABASE_URL) return { url: process.env.BENCH_DATABASE_URL, stop: async () => {} };
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgdl-bench-'));
  chmodSync(root, 0o755);
  const port = 54000 + Math.floor(Math.random() * 1000);
  const server = new EmbeddedServer({
    dataDir: path.join(root, 'data'),
    port,
    username: 'postgres',
    password: 'bench',
  });
  await server.start();
  return {
    url: `postgres://postgres:bench@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await server.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

await main();
