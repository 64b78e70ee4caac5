/**
 * `npx tsx bench/tx-profile.ts`: where the client CPU of the transaction group's
 * read-modify-write transaction goes, per stack (the scenarios of bench/tx-scenarios.ts, run
 * one after another, not interleaved: use `npm run bench -- --group tx` for the ratios).
 * Per stack it prints the statements sent per transaction, the async resources created per
 * transaction (promises, timers...; counted with an async hook in a pass of its own, since
 * the hook costs), then BENCH_OPS transactions measured: tx/s, client CPU and GC µs/tx.
 *
 * Knobs (environment):
 * - BENCH_ONLY: a regular expression over the stack keys raw, knex, managerNoXid, manager,
 *   managerTimeout (e.g. `^(knex|managerNoXid)$`); default all.
 * - BENCH_OPS (default 5000), BENCH_TX_CONCURRENCY (default 16), BENCH_TX_POOL (default 10).
 * - BENCH_CPU_PROFILE_DIR: writes DIR/<key>.cpuprofile, a V8 CPU profile (node:inspector,
 *   sampled every BENCH_CPU_PROFILE_INTERVAL_US, default 100 µs) of BENCH_OPS transactions of
 *   each stack only (after a warm-up, no setup), positions mapped to the .ts sources;
 *   BENCH_PROFILE_ROUNDS=R (default 1) profiles each stack R times, interleaved and rotated,
 *   into DIR/<key>.<round>.cpuprofile. Summarise and compare with bench/cpu-profile-summary.ts
 *   (its header has the commands). With BENCH_HEAP_PROFILE=1,
 *   also DIR/<key>.heapprofile: a sampling heap profile of another BENCH_OPS transactions
 *   that keeps objects the GC already collected, i.e. roughly everything allocated.
 * - BENCH_PROMISE_SITES=1: where each stack's promises are created (first frame outside node's
 *   async hooks, per tx), sorted by the last selected stack minus the first.
 * - `node --import tsx --cpu-prof --cpu-prof-dir=DIR bench/tx-profile.ts` profiles the whole
 *   process instead (setup included; do not combine with BENCH_CPU_PROFILE_DIR).
 * - BENCH_DATABASE_URL: a server to use (database `pgdl_bench` created and dropped); else a
 *   throwaway embedded PostgreSQL.
 */
import { AsyncLocalStorage, createHook } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { PostgresDatabase } from '../src/db/index.js';
import { measure, type BenchResult, type Scenario } from './bench-harness.js';
import { profiled } from './cpu-profiler.js';
import { benchConfig, benchDatabase, benchServer } from './bench-setup.js';
import { sentStatements } from './sent-statements.js';
import { captureRmwSql, createAccounts, TX_ROWS, txScenarios } from './tx-scenarios.js';

const OPS = Number(process.env.BENCH_OPS ?? 5000);
const CONCURRENCY = Number(process.env.BENCH_TX_CONCURRENCY ?? 16);
const POOL = Number(process.env.BENCH_TX_POOL ?? 10);
const ONLY = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : undefined;
const PROFILE_DIR = process.env.BENCH_CPU_PROFILE_DIR;
const PROFILE_INTERVAL_US = Number(process.env.BENCH_CPU_PROFILE_INTERVAL_US ?? 100);
const HEAP_PROFILE = process.env.BENCH_HEAP_PROFILE === '1';
const PROFILE_ROUNDS = Number(process.env.BENCH_PROFILE_ROUNDS ?? 1);
const PROMISE_SITES = process.env.BENCH_PROMISE_SITES === '1';
/** Transactions in the counting pass. */
const COUNTED = 1000;

/** Async resources (by type) created per operation while `ops` operations run at `concurrency`. */
async function resourcesPerOp(
  op: Scenario['op'],
  ops: number,
  concurrency: number,
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const hook = createHook({ init: (_id, type) => void counts.set(type, (counts.get(type) ?? 0) + 1) });
  hook.enable();
  try {
    await measure('count', op, { ops, concurrency, warmup: 0 });
  } finally {
    hook.disable();
  }
  return new Map([...counts].map(([type, n]) => [type, n / ops]));
}

/**
 * Where the promises of `ops` operations are created, per operation: the first stack frame
 * outside node's async hooks (`fn (file:line)`, .ts lines through tsx's source maps). Slow
 * (a stack trace per promise): a pass of its own.
 */
async function promiseSites(
  op: Scenario['op'],
  ops: number,
  concurrency: number,
): Promise<Map<string, number>> {
  const sites = new Map<string, number>();
  const hook = createHook({
    init: (_id, type) => {
      if (type !== 'PROMISE') return;
      const site = siteOf(new Error().stack ?? '');
      sites.set(site, (sites.get(site) ?? 0) + 1);
    },
  });
  hook.enable();
  try {
    await measure('sites', op, { ops, concurrency, warmup: 0 });
  } finally {
    hook.disable();
  }
  return new Map([...sites].map(([site, n]) => [site, n / ops]));
}

function siteOf(stack: string): string {
  const frames = stack
    .split('\n')
    .slice(1)
    .map((line) => line.trim().replace(/^at /, ''))
    .filter((line) => !/node:internal\/async_hooks|node:async_hooks|bench\/tx-profile\.ts/.test(line));
  // A builtin frame (`Promise.then (<anonymous>)`) names how; the next frame names where.
  let how = '';
  while (frames[0]?.endsWith('(<anonymous>)')) how = ` [${frames.shift()!.replace(' (<anonymous>)', '')}]`;
  const frame = frames[0];
  if (!frame) return `(no JS frame)${how}`;
  const where = frame
    .replace(/(?:file:\/\/)?\/\S*\/node_modules\//, '')
    .replace(/(?:file:\/\/)?\/\S*?\/(src|bench)\//, '$1/')
    .replace(/:\d+(\)?)$/, '$1');
  return `${where}${how}`;
}

// Promise hooks on for every stack alike (see run.ts).
new AsyncLocalStorage<true>().enterWith(true);
const server = await benchServer();
const { url, drop } = await benchDatabase(server.url);
const rawPool = new pg.Pool({ connectionString: url, max: POOL });
rawPool.on('error', () => {});
const logger = pino({ level: 'silent' });
const db = new PostgresDatabase(benchConfig(url, { maxOpenConns: POOL, maxIdleConns: POOL }), logger);
const session = PROFILE_DIR ? new Session() : undefined;
try {
  await db.connect();
  await createAccounts(rawPool);
  const sql = await captureRmwSql(db.driver());
  const keys = new Map<string, string>(Object.entries(TX_ROWS).map(([key, name]) => [name, key]));
  const scenarios = txScenarios({ rawPool, db, logger, sql });
  // Every op once first: TxManager installs its guard on db.driver() lazily, and bare knex should run behind it too.
  for (const [i, s] of scenarios.entries()) await s.op(i);
  if (PROFILE_DIR) mkdirSync(PROFILE_DIR, { recursive: true });
  const selected = scenarios.filter((s) => !ONLY || ONLY.test(keys.get(s.name)!));
  console.log(
    `${OPS} tx per stack, ${CONCURRENCY} in flight, pool ${POOL} (node ${process.version})\n\n| stack | statements/tx | promises/tx | other async resources/tx | tx/s | client CPU µs/tx | GC µs/tx |`,
  );
  console.log('|---|---:|---:|---|---:|---:|---:|');
  for (const s of selected) {
    const sent = await sentStatements(() => s.op(1));
    const resources = await resourcesPerOp(s.op, COUNTED, CONCURRENCY);
    const promises = resources.get('PROMISE') ?? 0;
    resources.delete('PROMISE');
    const others = [...resources]
      .filter(([, n]) => n >= 0.05)
      .map(([type, n]) => `${type} ${n.toFixed(1)}`)
      .join(', ');
    await measure('warm-up', s.op, { ops: 500, concurrency: CONCURRENCY, warmup: 0 });
    const r = await measure(s.name, s.op, { ops: OPS, concurrency: CONCURRENCY, warmup: 0 });
    console.log(
      `| ${keys.get(s.name)}: ${s.name} | ${sent.length} | ${promises.toFixed(1)} | ${others} | ${r.opsPerSec.toFixed(0)} | ${r.cpuUsPerOp.toFixed(0)} | ${r.gcUsPerOp.toFixed(0)} |`,
    );
  }
  if (PROMISE_SITES) {
    const counted: Array<Map<string, number>> = [];
    for (const s of selected) counted.push(await promiseSites(s.op, 200, CONCURRENCY));
    const all = new Set(counted.flatMap((m) => [...m.keys()]));
    const first = counted[0]!;
    const last = counted[counted.length - 1]!;
    const rows = [...all].sort(
      (a, b) => (last.get(b) ?? 0) - (first.get(b) ?? 0) - ((last.get(a) ?? 0) - (first.get(a) ?? 0)),
    );
    console.log(
      `\nPromises created per tx, by site (sorted by ${keys.get(selected.at(-1)!.name)} - ${keys.get(selected[0]!.name)}):\n`,
    );
    console.log(`| site | ${selected.map((s) => keys.get(s.name)).join(' | ')} |`);
    console.log(`|---|${selected.map(() => '---:').join('|')}|`);
    // Sites every stack uses equally are summed into one line: the table is what differs.
    const same = rows.filter((site) =>
      counted.every((m) => Math.abs((m.get(site) ?? 0) - (first.get(site) ?? 0)) < 0.02),
    );
    for (const site of rows.filter((r) => !same.includes(r)))
      console.log(`| ${site} | ${counted.map((m) => (m.get(site) ?? 0).toFixed(2)).join(' | ')} |`);
    const sameTotal = same.reduce((sum, site) => sum + (first.get(site) ?? 0), 0);
    console.log(
      `| (${same.length} sites with the same count in every stack) | ${counted.map(() => sameTotal.toFixed(2)).join(' | ')} |`,
    );
  }
  if (session && PROFILE_DIR) {
    session.connect();
    console.log(`\nProfiles (${OPS} tx each; tx/s and CPU with the profiler's own cost):`);
    // Interleaved, the order rotated each round, as in the bench: load drifts on a shared machine.
    for (let round = 0; round < PROFILE_ROUNDS; round++) {
      const offset = round % selected.length;
      for (const s of [...selected.slice(offset), ...selected.slice(0, offset)]) {
        const key = keys.get(s.name)!;
        const base = path.join(PROFILE_DIR, PROFILE_ROUNDS > 1 ? `${key}.${round + 1}` : key);
        await measure('warm-up', s.op, { ops: 200, concurrency: CONCURRENCY, warmup: 0 });
        let p: BenchResult | undefined;
        await profiled(
          session,
          `${base}.cpuprofile`,
          { heap: false, intervalUs: PROFILE_INTERVAL_US },
          async () => {
            p = await measure(s.name, s.op, { ops: OPS, concurrency: CONCURRENCY, warmup: 0 });
          },
        );
        console.log(
          `- ${base}.cpuprofile: ${p!.opsPerSec.toFixed(0)} tx/s, ${p!.cpuUsPerOp.toFixed(0)} µs CPU/tx, GC ${p!.gcUsPerOp.toFixed(0)} µs/tx`,
        );
        if (HEAP_PROFILE) {
          await profiled(session, `${base}.heapprofile`, { heap: true }, async () => {
            await measure(s.name, s.op, { ops: OPS, concurrency: CONCURRENCY, warmup: 0 });
          });
          console.log(`- ${base}.heapprofile`);
        }
      }
    }
  }
} finally {
  session?.disconnect();
  await db.close();
  await rawPool.end();
  await drop();
  await server.stop();
}
