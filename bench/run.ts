/**
 * `npm run bench`: throughput of this data layer against raw `pg`, measured in the same run
 * on the same server. Prints markdown tables with ratios against a raw pg baseline (named in
 * each table); targets are read off these, never asserted in tests.
 *
 * Groups (each scenario measured BENCH_ROUNDS times interleaved, the median kept):
 * - stacks (the default): this product's own paths side by side with raw pg (unnamed and
 *   named statements), stock knex, stock objection, kysely, postgres.js and pg-promise, pools
 *   of BENCH_STACK_POOL: point read by id (BENCH_READ_CONCURRENCY in flight, default 32),
 *   single insert and two read-modify-write transactions (BENCH_WRITE_CONCURRENCY, default 16),
 *   bulk multi-row INSERT and bulk COPY (BENCH_STACK_BULK_ROWS rows per load, default 20000).
 *   Prints a summary of ratios against raw pg (unnamed) and writes latest.json, latest.md and
 *   latest.svg (a bar chart) to `--out DIR` (default bench/results). See bench/stacks-group.ts.
 * - reads: point reads by primary key on a 10k-row table, raw pg vs knex vs objection.
 * - users: `UserRepository.getById` / `findByEmail` (prepared statements on and off) against
 *   raw pg sending the very same SQL, on the migrated `users` table seeded with copyIn.
 * - tx: read-modify-write transactions (BEGIN; SELECT ... FOR UPDATE; UPDATE; COMMIT), raw pg
 *   vs bare knex.transaction on the database's own knex vs TxManager (resolveLostCommit: false,
 *   the same statements as knex; default, the xid taken with BEGIN; timeoutMs), on pools of
 *   BENCH_TX_POOL, BENCH_TX_CONCURRENCY in flight. Reports throughput against raw pg, client
 *   CPU per transaction against bare knex, and the 10 % CPU target (bench/tx-group.ts).
 * - bulk: BENCH_BULK_ROWS users loaded by raw INSERT, raw COPY, insertMany and copyIn, each
 *   run in its own process for a clean peak RSS.
 *
 * Knobs (environment):
 * - BENCH_DATABASE_URL: a server to use (a database `pgdl_bench` is created on it and dropped
 *   afterwards; needs CREATEDB). Default: a throwaway embedded PostgreSQL.
 * - BENCH_OPS: operations per scenario and round in reads/users/tx, default 5000.
 * - BENCH_CONCURRENCY: operations in flight in reads/users, default 8 (the pool size is 8).
 * - BENCH_TX_CONCURRENCY: transactions in flight in tx, default 16; BENCH_TX_POOL: its pool
 *   size (raw pg and the database alike), default 10.
 * - BENCH_ROUNDS: interleaved rounds per scenario, order rotated each round, default 3 (the
 *   median is reported).
 * - BENCH_USERS: users seeded for the users group, default 10000.
 * - BENCH_BULK_ROWS: rows per bulk load, default 100000; BENCH_BULK_ROUNDS, default 3.
 * - BENCH_STACK_READ_OPS / BENCH_STACK_WRITE_OPS: operations per stack and round in stacks,
 *   point reads / the write paths, default 5000 / 2000;
 *   BENCH_STACK_POOL, default 10; BENCH_STACK_USERS: users seeded there, default 10000.
 * - BENCH_GROUPS: comma-separated subset of stacks,reads,users,tx,bulk (or `all`); default
 *   stacks. On the command line, `npm run bench -- --group tx` (repeatable, or
 *   comma-separated) takes precedence.
 * - `--quick`: tiny counts and one round, to prove that every path of every stack runs (what
 *   the test suite runs; the numbers mean nothing). Its files go to a new temporary directory
 *   unless `--out DIR` is given, so a quick run never replaces bench/results/latest.*.
 * The stacks group takes about four minutes on a 2-core machine; the other four together
 * about two and a half.
 *
 * An AsyncLocalStorage is entered before anything is measured. Node 20 runs promise hooks for
 * every promise once any AsyncLocalStorage is in use (TxManager's ambient transaction, the
 * service's request ids), and leaves them on: without this, whichever scenarios ran before the
 * first TxManager call would be measured without that cost and the others with it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import knexFactory from 'knex';
import { Model } from 'objection';
import pino from 'pino';
import { PostgresDatabase } from '../src/db/index.js';
import { UserRepository } from '../src/users/user-repository.js';
import { compare, report, type Scenario } from './bench-harness.js';
import { benchConfig, benchDatabase, benchServer, benchUsers, BENCH_POOL, migrate } from './bench-setup.js';
import { reportBulk, runBulkGroup } from './bulk-load.js';
import { runStacksGroup } from './stacks-group.js';
import { runTxGroup } from './tx-group.js';

const ALL_GROUPS = ['stacks', 'reads', 'users', 'tx', 'bulk'] as const;
const ARGS = parseCommandLine(process.argv.slice(2));
const QUICK = ARGS.quick;
/** A knob: the environment's value, else the quick or the full default. */
const knob = (name: string, full: number, quick: number): number =>
  Number(process.env[name] ?? (QUICK ? quick : full));
const OPS = knob('BENCH_OPS', 5000, 30);
const CONCURRENCY = knob('BENCH_CONCURRENCY', 8, 8);
const ROUNDS = knob('BENCH_ROUNDS', 3, 1);
const USERS = knob('BENCH_USERS', 10_000, 200);
const BULK_ROWS = knob('BENCH_BULK_ROWS', 100_000, 500);
const BULK_ROUNDS = knob('BENCH_BULK_ROUNDS', 3, 1);
const TX_CONCURRENCY = knob('BENCH_TX_CONCURRENCY', 16, 16);
const TX_POOL = knob('BENCH_TX_POOL', 10, 10);
const GROUPS = selectedGroups(ARGS.groups, process.env.BENCH_GROUPS);
const RESULTS_DIR = fileURLToPath(new URL('./results', import.meta.url));

class Item extends Model {
  static override tableName = 'bench_items';
  id!: number;
  name!: string;
}

async function main(): Promise<void> {
  new AsyncLocalStorage<true>().enterWith(true);
  const started = performance.now();
  const server = await benchServer();
  const { url, drop } = await benchDatabase(server.url);
  await migrate(url);
  const rawPool = new pg.Pool({ connectionString: url, max: BENCH_POOL });
  // pg#2762: without a listener an idle client's error (the server stopping) crashes the process.
  rawPool.on('error', () => {});
  const knex = knexFactory({ client: 'pg', connection: url, pool: { min: BENCH_POOL, max: BENCH_POOL } });
  const logger = pino({ level: 'silent' });
  const db = new PostgresDatabase(benchConfig(url), logger);
  await db.connect();
  Model.knex(knex);
  const opts = { ops: OPS, concurrency: CONCURRENCY, rounds: ROUNDS };
  const run = async (title: string, scenarios: Scenario[]): Promise<void> => {
    const results = await compare(scenarios, opts);
    report(
      `${title}; ${OPS} ops x ${ROUNDS} rounds, ${CONCURRENCY} in flight, pool ${BENCH_POOL}`,
      results,
      results[0]!,
    );
  };
  console.log(`# npm run bench (node ${process.version}, ${new Date().toISOString()})`);
  try {
    if (GROUPS.has('stacks')) {
      await runStacksGroup(url, logger, {
        readOps: knob('BENCH_STACK_READ_OPS', 5000, 30),
        writeOps: knob('BENCH_STACK_WRITE_OPS', 2000, 30),
        rounds: ROUNDS,
        pool: knob('BENCH_STACK_POOL', 10, 10),
        users: knob('BENCH_STACK_USERS', 10_000, 200),
        bulkRows: knob('BENCH_STACK_BULK_ROWS', 20_000, 300),
        readConcurrency: knob('BENCH_READ_CONCURRENCY', 32, 32),
        writeConcurrency: knob('BENCH_WRITE_CONCURRENCY', 16, 16),
        quick: QUICK,
        outDir: ARGS.out ?? (QUICK ? mkdtempSync(path.join(os.tmpdir(), 'pgdl-bench-quick-')) : RESULTS_DIR),
        command: commandLine(),
      });
    }

    if (GROUPS.has('reads')) {
      await rawPool.query('create table bench_items (id bigint primary key, name text not null)');
      await rawPool.query(`insert into bench_items select g, 'item ' || g from generate_series(1, 10000) g`);
      await rawPool.query('analyze bench_items');
      const id = (i: number): number => (i % 10000) + 1;
      const sql = 'select id, name from bench_items where id = $1';
      await run('Point reads by primary key', [
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
      ]);
    }

    if (GROUPS.has('users')) {
      const seeded = await new UserRepository(db.driver()).copyIn(benchUsers(USERS));
      await rawPool.query('analyze users');
      const prepared = new UserRepository(db.driver(), { preparedStatements: true });
      const unprepared = new UserRepository(db.driver(), { preparedStatements: false });
      const uid = (i: number): string => String((i % seeded) + 1);
      const email = (i: number): string => `SEED-${(i % seeded) + 1}@example.COM`;
      // The SQL the repository sends, so raw pg runs exactly the same statement.
      const byIdSql = sqlOf(await captureSql(db, () => unprepared.findById('1')));
      const byEmailSql = sqlOf(await captureSql(db, () => unprepared.findByEmail('a@b.c')));
      await run(`UserRepository.getById on users (${seeded} rows, seeded with copyIn)`, [
        { name: 'raw pg, same SQL, unnamed', op: (i) => rawPool.query(byIdSql, [uid(i), 1]) },
        {
          name: 'raw pg, same SQL, named',
          op: (i) => rawPool.query({ name: 'bench_user_id', text: byIdSql, values: [uid(i), 1] }),
        },
        { name: 'getById, preparedStatements on', op: (i) => prepared.getById(uid(i)) },
        { name: 'getById, preparedStatements off', op: (i) => unprepared.getById(uid(i)) },
      ]);
      await run(`UserRepository.findByEmail on users (${seeded} rows, lower(email) index)`, [
        { name: 'raw pg, same SQL, unnamed', op: (i) => rawPool.query(byEmailSql, [email(i), 1]) },
        {
          name: 'raw pg, same SQL, named',
          op: (i) => rawPool.query({ name: 'bench_user_email', text: byEmailSql, values: [email(i), 1] }),
        },
        { name: 'findByEmail, preparedStatements on', op: (i) => prepared.findByEmail(email(i)) },
        { name: 'findByEmail, preparedStatements off', op: (i) => unprepared.findByEmail(email(i)) },
      ]);
    }

    if (GROUPS.has('tx')) {
      await runTxGroup(url, logger, { ops: OPS, concurrency: TX_CONCURRENCY, pool: TX_POOL, rounds: ROUNDS });
    }

    const mem = process.memoryUsage();
    console.log(
      `\nthis process after the in-process groups: rss ${mib(mem.rss)} MiB, heap used ${mib(mem.heapUsed)} MiB (peak rss ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB)`,
    );

    if (GROUPS.has('bulk')) {
      const results = await runBulkGroup(url, rawPool, { rows: BULK_ROWS, rounds: BULK_ROUNDS });
      reportBulk(
        `Bulk load: ${BULK_ROWS} users into the migrated users table (${BULK_ROUNDS} rounds, one process per run, median)`,
        results,
      );
    }
  } finally {
    await db.close();
    await knex.destroy();
    await rawPool.end();
    await drop();
    await server.stop();
  }
  console.log(`\ntotal ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

/** The SQL statements `fn` sends through the database's knex. */
async function captureSql(db: PostgresDatabase, fn: () => Promise<unknown>): Promise<string[]> {
  const sent: string[] = [];
  const onQuery = (q: { sql: string }): void => void sent.push(q.sql);
  db.driver().on('query', onQuery);
  try {
    await fn();
  } finally {
    db.driver().off('query', onQuery);
  }
  return sent;
}

function sqlOf(sent: string[]): string {
  if (sent.length !== 1 || !sent[0]) throw new Error(`expected one statement, got ${sent.length}`);
  return sent[0];
}

/** `--group NAME[,NAME]` (repeatable), `--quick`, `--out DIR`; anything else is an error naming the usage. */
function parseCommandLine(argv: string[]): { groups: string[]; quick: boolean; out?: string } {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        group: { type: 'string', multiple: true },
        quick: { type: 'boolean', default: false },
        out: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    });
    return { groups: values.group ?? [], quick: values.quick ?? false, out: values.out };
  } catch (err) {
    throw new Error(
      `${(err as Error).message} (usage: bench/run.ts [--group ${ALL_GROUPS.join('|')}|all]... [--quick] [--out DIR])`,
      { cause: err },
    );
  }
}

/**
 * The groups to run: `--group tx` / `--group=reads,tx` (repeatable) if given, else
 * BENCH_GROUPS, else stacks; `all` is every group. An unknown name is an error, not an empty run.
 */
function selectedGroups(named: string[], env: string | undefined): Set<string> {
  const list = named.length > 0 ? named.join(',') : (env ?? 'stacks');
  const groups = new Set(list.split(',').map((g) => g.trim()));
  if (groups.has('all')) return new Set(ALL_GROUPS);
  for (const g of groups)
    if (!(ALL_GROUPS as readonly string[]).includes(g))
      throw new Error(`unknown bench group "${g}" (known: ${ALL_GROUPS.join(', ')}, all)`);
  return groups;
}

/** How this run was started, for the results file: the BENCH_* knobs set, then the command. */
function commandLine(): string {
  const env = Object.entries(process.env)
    .filter(([k]) => k.startsWith('BENCH_') && k !== 'BENCH_DATABASE_URL')
    .map(([k, v]) => `${k}=${v}`);
  const args = process.argv.slice(2);
  return [...env, 'npm run bench', ...(args.length > 0 ? ['--', ...args] : [])].join(' ');
}

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(0);
}

await main();
