/**
 * `npx tsx bench/stacks-profile.ts`: where each stack's client CPU goes on one path of the
 * stacks comparison (bench/stacks-group.ts), the stacks run one after another (not rotated:
 * use `npm run bench` for ratios). Per stack it prints ops/s and client CPU and GC µs/op of
 * BENCH_OPS operations after a warm-up; with BENCH_CPU_PROFILE_DIR it writes
 * DIR/<path>.<stack>.cpuprofile, a V8 CPU profile of those operations only (positions mapped
 * to the .ts sources), to summarise with bench/cpu-profile-summary.ts:
 *
 * ```sh
 * BENCH_PATH=read BENCH_ONLY='^(pg|product)$' BENCH_CPU_PROFILE_DIR=/tmp/prof npx tsx bench/stacks-profile.ts
 * npx tsx bench/cpu-profile-summary.ts --ops 5000 /tmp/prof/read.pg.cpuprofile --vs /tmp/prof/read.product.cpuprofile
 * ```
 *
 * Knobs (environment): BENCH_PATH, one of read, insert, rmw, rmwRepo, bulkInsert, bulkCopy
 * (default read; a bulk "op" is one load of BENCH_STACK_BULK_ROWS rows, default 20000, and
 * BENCH_OPS defaults to 3 there);
 * BENCH_ONLY, a regular expression over the stack keys (pg, product, knex, objection, kysely,
 * pgPromise, postgresJs, pgNamed; default all); BENCH_OPS (default 5000); BENCH_CONCURRENCY
 * (default 32 for read, else 16); BENCH_STACK_POOL (default 10); BENCH_CPU_PROFILE_INTERVAL_US
 * (default 100); BENCH_DATABASE_URL as for `npm run bench`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import pino from 'pino';
import { measure } from './bench-harness.js';
import { benchDatabase, benchServer, migrate } from './bench-setup.js';
import { profiled } from './cpu-profiler.js';
import { closeStacks, openStacks } from './stack-clients.js';
import { bulkCopyLoads, bulkInsertLoads } from './stack-bulk.js';
import { opScenarios, type StackScenario } from './stack-scenarios.js';
import { OP_PATHS, seedStacks } from './stacks-group.js';

const PROFILED_PATHS = [...OP_PATHS, 'bulkInsert', 'bulkCopy'] as const;
const PATH = (process.env.BENCH_PATH ?? 'read') as (typeof PROFILED_PATHS)[number];
if (!PROFILED_PATHS.includes(PATH)) throw new Error(`BENCH_PATH must be one of ${PROFILED_PATHS.join(', ')}`);
const BULK = PATH === 'bulkInsert' || PATH === 'bulkCopy';
const ONLY = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : undefined;
const OPS = Number(process.env.BENCH_OPS ?? (BULK ? 3 : 5000));
const BULK_ROWS = Number(process.env.BENCH_STACK_BULK_ROWS ?? 20_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? (PATH === 'read' ? 32 : BULK ? 1 : 16));
const POOL = Number(process.env.BENCH_STACK_POOL ?? 10);
const PROFILE_DIR = process.env.BENCH_CPU_PROFILE_DIR;
const INTERVAL_US = Number(process.env.BENCH_CPU_PROFILE_INTERVAL_US ?? 100);

// Promise hooks on for every stack alike (see run.ts).
new AsyncLocalStorage<true>().enterWith(true);
const server = await benchServer();
const { url, drop } = await benchDatabase(server.url);
const session = PROFILE_DIR ? new Session() : undefined;
session?.connect();
if (PROFILE_DIR) mkdirSync(PROFILE_DIR, { recursive: true });
try {
  await migrate(url);
  const c = await openStacks(url, POOL, pino({ level: 'silent' }));
  try {
    const inputs = await seedStacks(c, 10_000);
    let loads = 0; // bulk: a tag per load, so the emails never repeat (no TRUNCATE between loads)
    const all: StackScenario[] = BULK
      ? (PATH === 'bulkInsert' ? bulkInsertLoads : bulkCopyLoads)(c, BULK_ROWS).map((l) => ({
          stack: l.stack,
          how: l.how,
          op: () => l.load(`prof-${l.stack}-${loads++}`),
        }))
      : opScenarios(PATH, c, inputs);
    const scenarios = all.filter((s) => !ONLY || ONLY.test(s.stack));
    console.log(
      `# ${PATH}: ${OPS} ${BULK ? `loads of ${BULK_ROWS} rows` : 'ops'} per stack, ${CONCURRENCY} in flight, pool ${POOL} (node ${process.version})`,
    );
    console.log('| stack | what runs | ops/s | client CPU µs/op | GC µs/op |\n|---|---|--:|--:|--:|');
    for (const s of scenarios) {
      await measure(s.stack, s.op, { ops: Math.min(OPS, 2000), concurrency: CONCURRENCY }); // warm-up
      const run = async () => measure(s.stack, s.op, { ops: OPS, concurrency: CONCURRENCY, warmup: 0 });
      let r = await run();
      if (session) {
        const file = path.join(PROFILE_DIR!, `${PATH}.${s.stack}.cpuprofile`);
        await profiled(
          session,
          file,
          { heap: false, intervalUs: INTERVAL_US },
          async () => void (r = await run()),
        );
      }
      console.log(
        `| ${s.stack} | ${s.how} | ${r.opsPerSec.toFixed(0)} | ${r.cpuUsPerOp.toFixed(0)} | ${r.gcUsPerOp.toFixed(0)} |`,
      );
    }
    if (PROFILE_DIR)
      console.log(`\nprofiles (the table's numbers are those of the profiled run) in ${PROFILE_DIR}`);
  } finally {
    await closeStacks(c);
  }
} finally {
  session?.disconnect();
  await drop();
  await server.stop();
}
