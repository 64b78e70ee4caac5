/**
 * One bulk-load run in its own process (spawned by `bulk-load.ts`), so that its peak RSS and
 * heap belong to that scenario alone. Reads BENCH_URL, BENCH_BULK_SCENARIO, BENCH_BULK_ROWS;
 * loads the rows into `users` (which the parent has emptied) and prints one JSON line:
 * `{ rows, ms, peakRssMiB, peakHeapMiB, baseRssMiB }`.
 *
 * Rows are produced inside the timed region for every scenario: by a generator for the
 * streaming paths (raw INSERT batches, raw COPY, copyIn), by `Array.from` of the same
 * generator for insertMany, whose API takes an array.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import pino from 'pino';
import { PostgresDatabase } from '../src/db/index.js';
import { UserRepository } from '../src/users/user-repository.js';
import { benchConfig, benchUsers } from './bench-setup.js';
import type { BulkScenario } from './bulk-load.js';
import { rawCopy, rawInsert } from './bulk-raw.js';

const url = process.env.BENCH_URL!;
const scenario = process.env.BENCH_BULK_SCENARIO as BulkScenario;
const rows = Number(process.env.BENCH_BULK_ROWS ?? 100_000);
const MiB = 2 ** 20;

async function main(): Promise<void> {
  const baseRss = process.memoryUsage().rss;
  let peakHeap = 0;
  const sample = (): void => {
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  };
  let loaded: number;
  let ms: number;
  if (scenario === 'raw-insert' || scenario === 'raw-copy') {
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => {});
    await client.connect();
    const sampler = setInterval(sample, 10);
    const t0 = performance.now();
    loaded =
      scenario === 'raw-insert'
        ? await rawInsert(client, benchUsers(rows, 'bulk'))
        : await rawCopy(client, benchUsers(rows, 'bulk'));
    ms = performance.now() - t0;
    clearInterval(sampler);
    await client.end();
  } else {
    const db = new PostgresDatabase(
      benchConfig(url, { maxOpenConns: 1, maxIdleConns: 1 }),
      pino({ level: 'silent' }),
    );
    await db.connect();
    const repo = new UserRepository(db.driver());
    const sampler = setInterval(sample, 10);
    const t0 = performance.now();
    loaded =
      scenario === 'insertMany'
        ? await repo.insertMany(Array.from(benchUsers(rows, 'bulk')))
        : await repo.copyIn(benchUsers(rows, 'bulk'));
    ms = performance.now() - t0;
    clearInterval(sampler);
    await db.close();
  }
  sample();
  console.log(
    JSON.stringify({
      rows: loaded,
      ms,
      // ru_maxrss: the process's true peak (KiB on Linux), including module loading.
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      peakHeapMiB: peakHeap / MiB,
      baseRssMiB: baseRss / MiB,
    }),
  );
}

await main();
