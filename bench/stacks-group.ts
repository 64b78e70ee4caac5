import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import pg from 'pg';
import { compare, median, type ComparedResult } from './bench-harness.js';
import { benchUsers } from './bench-setup.js';
import { captureProductSql } from './product-sql.js';
import { bulkCopyLoads, bulkInsertLoads, type BulkLoad } from './stack-bulk.js';
import {
  closeStacks,
  openStacks,
  postgresDebug,
  sentByAnyStack,
  type StackClients,
} from './stack-clients.js';
import { opScenarios, type ScenarioInputs } from './stack-scenarios.js';
import { renderChart } from './stacks-chart.js';
import { renderMarkdown, type PathResult, type StackCell, type StacksRun } from './stacks-report.js';
import { captureRmwSql, createAccounts } from './tx-scenarios.js';

type Logger = Parameters<typeof openStacks>[2];

/** How the stacks group runs. */
export interface StacksOptions {
  /** Operations per stack and round: point reads, then the write paths (single insert, transactions). */
  readOps: number;
  writeOps: number;
  rounds: number;
  /** Connections of every stack's pool. */
  pool: number;
  /** Users seeded (with copyIn) for the read and update paths. */
  users: number;
  /** Rows per bulk load. */
  bulkRows: number;
  /** In flight: point reads, then single inserts and the transactions. */
  readConcurrency: number;
  writeConcurrency: number;
  quick: boolean;
  /** Directory for latest.json, latest.md and latest.svg. */
  outDir: string;
  /** The command line recorded in the results. */
  command: string;
}

export const OP_PATHS = ['read', 'insert', 'rmw', 'rmwRepo'] as const;

/**
 * The stacks side by side: every stack's way on every path (point read, single insert, two
 * read-modify-write transactions, bulk INSERT, bulk COPY), each path measured in `rounds`
 * rounds with the stacks' order rotated, against the same database. Prints the markdown and
 * writes `latest.json`, `latest.md` and `latest.svg` to `outDir`.
 */
export async function runStacksGroup(url: string, logger: Logger, opts: StacksOptions): Promise<StacksRun> {
  const started = performance.now();
  const loadAvgStart = os.loadavg();
  const c = await openStacks(url, opts.pool, logger);
  const debugSink: string[] = [];
  const debugSql = postgresDebug(url, debugSink);
  try {
    const inputs = await seedStacks(c, opts.users);
    const version = (await c.rawPool.query<{ server_version: string }>('show server_version')).rows[0]!
      .server_version;
    const paths: PathResult[] = [];
    for (const p of OP_PATHS) {
      const concurrency = p === 'read' ? opts.readConcurrency : opts.writeConcurrency;
      const ops = p === 'read' ? opts.readOps : opts.writeOps;
      const scenarios = opScenarios(p, c, inputs);
      const counted = opScenarios(p, { ...c, sql: debugSql }, inputs);
      const statements: PathResult['statements'] = {};
      for (const [i, s] of counted.entries()) {
        await s.op(i); // a first use may ask for the server version or prepare
        statements[s.stack] = await sentByAnyStack([pg, c.pgp.pg as unknown as typeof pg], debugSink, () =>
          s.op(i + 1),
        );
      }
      const results = await compare(
        scenarios.map((s) => ({ name: s.stack, op: s.op })),
        { ops, concurrency, rounds: opts.rounds },
      );
      paths.push({
        path: p,
        concurrency,
        ops,
        unit: 'ops/s',
        statements,
        cells: scenarios.map((s) => opCell(s.stack, s.how, results)),
      });
      console.error(`stacks: ${p} done (${((performance.now() - started) / 1000).toFixed(0)} s)`);
    }
    for (const [p, loads] of [
      ['bulkInsert', bulkInsertLoads(c, opts.bulkRows)],
      ['bulkCopy', bulkCopyLoads(c, opts.bulkRows)],
    ] as const) {
      paths.push({
        path: p,
        concurrency: 1,
        ops: opts.bulkRows,
        unit: 'rows/s',
        statements: {},
        cells: await compareBulk(c, loads, opts),
      });
      console.error(`stacks: ${p} done (${((performance.now() - started) / 1000).toFixed(0)} s)`);
    }
    await c.rawPool.query('truncate users restart identity');
    const run: StacksRun = {
      node: process.version,
      date: new Date().toISOString(),
      host: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? '?',
        loadAvgStart,
        loadAvgEnd: os.loadavg(),
      },
      postgres: `PostgreSQL ${version}`,
      command: opts.command,
      quick: opts.quick,
      rounds: opts.rounds,
      pool: opts.pool,
      seconds: (performance.now() - started) / 1000,
      paths,
    };
    const markdown = renderMarkdown(run);
    console.log(`\n${markdown}`);
    mkdirSync(opts.outDir, { recursive: true });
    await writeFormatted(path.join(opts.outDir, 'latest.json'), JSON.stringify(run));
    await writeFormatted(path.join(opts.outDir, 'latest.md'), markdown);
    writeFileSync(path.join(opts.outDir, 'latest.svg'), renderChart(run));
    console.log(
      `wrote ${['latest.json', 'latest.md', 'latest.svg'].map((f) => path.join(opts.outDir, f)).join(', ')}`,
    );
    return run;
  } finally {
    await debugSql.end({ timeout: 5 });
    await closeStacks(c);
  }
}

/** Writes `text` formatted as the repository's prettier settings format `file` (so `npm run lint` passes on committed results). */
async function writeFormatted(file: string, text: string): Promise<void> {
  const prettier = await import('prettier');
  const config = await prettier.resolveConfig(file);
  writeFileSync(file, await prettier.format(text, { ...config, filepath: file }));
}

/**
 * Fills the tables every path uses (`bench_accounts`; `users`, emptied, then `users` rows
 * loaded with copyIn and analysed) and learns the SQL that raw pg and pg-promise mirror.
 */
export async function seedStacks(c: StackClients, users: number): Promise<ScenarioInputs> {
  await createAccounts(c.rawPool);
  await c.rawPool.query('truncate users restart identity');
  const seeded = await c.repo.copyIn(benchUsers(users));
  await c.rawPool.query('vacuum analyze users');
  return {
    users: seeded,
    product: await captureProductSql(c.repo, String(Math.min(7, seeded))),
    rmw: await captureRmwSql(c.knex),
  };
}

/** A per-operation path's cell: the median round, with the paired per-round ratios against raw pg. */
function opCell(stack: StackCell['stack'], how: string, results: ComparedResult[]): StackCell {
  const r = results.find((x) => x.name === stack)!;
  const base = results.find((x) => x.name === 'pg')!;
  const ratios = r.rounds.map((run, i) => run.opsPerSec / base.rounds[i]!.opsPerSec);
  return {
    stack,
    how,
    perSec: r.opsPerSec,
    ratio: median(ratios),
    ratioMin: Math.min(...ratios),
    ratioMax: Math.max(...ratios),
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    cpuUs: r.cpuUsPerOp,
    gcUs: r.gcUsPerOp,
    rounds: r.rounds.map((run) => run.opsPerSec),
  };
}

interface BulkRound {
  ms: number;
  cpuUs: number;
  gcUs: number;
}

/**
 * Each load `rounds` times, the order rotated each round, into an emptied `users` (TRUNCATE,
 * CHECKPOINT before every load, outside the timed region), in this process: unlike the bulk
 * group (one process per load, for peak RSS), every stack shares the process, as on the other
 * paths. Throws when a load writes another number of rows than asked.
 */
async function compareBulk(c: StackClients, loads: BulkLoad[], opts: StacksOptions): Promise<StackCell[]> {
  const byStack = new Map<string, BulkRound[]>(loads.map((l) => [l.stack, []]));
  for (let r = 0; r < opts.rounds; r++) {
    const offset = r % loads.length;
    for (const l of [...loads.slice(offset), ...loads.slice(0, offset)]) {
      await c.rawPool.query('truncate users restart identity');
      await c.rawPool.query('checkpoint');
      let gcMs = 0;
      const gc = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) gcMs += e.duration;
      });
      gc.observe({ entryTypes: ['gc'] });
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const n = await l.load(`bulk-${l.stack}-${r}`);
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      for (const e of gc.takeRecords()) gcMs += e.duration;
      gc.disconnect();
      if (n !== opts.bulkRows)
        throw new Error(`${l.stack} (${l.how}) loaded ${n} rows, expected ${opts.bulkRows}`);
      const perK = 1000 / opts.bulkRows;
      byStack.get(l.stack)!.push({ ms, cpuUs: (cpu.user + cpu.system) * perK, gcUs: gcMs * 1000 * perK });
    }
  }
  const base = byStack.get('pg')!;
  return loads.map((l) => {
    const runs = byStack.get(l.stack)!;
    const ratios = runs.map((run, i) => base[i]!.ms / run.ms);
    const mid = [...runs].sort((a, b) => a.ms - b.ms)[Math.floor(runs.length / 2)]!;
    return {
      stack: l.stack,
      how: l.how,
      perSec: (opts.bulkRows / mid.ms) * 1000,
      ratio: median(ratios),
      ratioMin: Math.min(...ratios),
      ratioMax: Math.max(...ratios),
      p50Ms: mid.ms,
      p99Ms: mid.ms,
      cpuUs: median(runs.map((run) => run.cpuUs)),
      gcUs: median(runs.map((run) => run.gcUs)),
      rounds: runs.map((run) => (opts.bulkRows / run.ms) * 1000),
    };
  });
}
