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
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { finished } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import pino from 'pino';
import { PostgresDatabase } from '../src/db/index.js';
import { UserRepository } from '../src/users/user-repository.js';
import { benchConfig, benchUsers } from './bench-setup.js';
import { BULK_INSERT_BATCH, type BulkScenario } from './bulk-load.js';

const url = process.env.BENCH_URL!;
const scenario = process.env.BENCH_BULK_SCENARIO as BulkScenario;
const rows = Number(process.env.BENCH_BULK_ROWS ?? 100_000);
const MiB = 2 ** 20;

/** Raw pg, one transaction, multi-row INSERTs of BULK_INSERT_BATCH rows (3 bind values each). */
async function rawInsert(client: pg.Client): Promise<number> {
  await client.query('begin');
  let batch: unknown[] = [];
  let n = 0;
  const flush = async (): Promise<void> => {
    const count = batch.length / 3;
    const values = Array.from({ length: count }, (_, r) => `($${r * 3 + 1}, $${r * 3 + 2}, $${r * 3 + 3})`);
    await client.query(`insert into users (email, name, status) values ${values.join(', ')}`, batch);
    n += count;
    batch = [];
  };
  for (const u of benchUsers(rows, 'bulk')) {
    batch.push(u.email, u.name, u.status);
    if (batch.length === BULK_INSERT_BATCH * 3) await flush();
  }
  if (batch.length > 0) await flush();
  await client.query('commit');
  return n;
}

/** Raw pg COPY FROM STDIN (pg-copy-streams), 64 KiB writes with backpressure, no escaping needed. */
async function rawCopy(client: pg.Client): Promise<number> {
  const stream = client.query(copyFrom('COPY users (email, name, status) FROM STDIN'));
  let chunk = '';
  for (const u of benchUsers(rows, 'bulk')) {
    chunk += `${u.email}\t${u.name}\t${u.status}\n`;
    if (chunk.length >= 64 * 1024) {
      if (!stream.write(chunk)) await once(stream, 'drain');
      chunk = '';
    }
  }
  stream.end(chunk);
  await finished(stream);
  return stream.rowCount;
}

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
    loaded = scenario === 'raw-insert' ? await rawInsert(client) : await rawCopy(client);
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
