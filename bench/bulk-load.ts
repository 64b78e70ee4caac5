import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';

import { BULK_INSERT_BATCH } from './bulk-raw.js';

export const BULK_SCENARIOS = ['raw-insert', 'raw-copy', 'insertMany', 'copyIn'] as const;
export type BulkScenario = (typeof BULK_SCENARIOS)[number];

const LABELS: Record<BulkScenario, string> = {
  'raw-insert': `raw pg multi-row INSERT (${BULK_INSERT_BATCH} rows/statement, one transaction)`,
  'raw-copy': 'raw pg COPY FROM STDIN (pg-copy-streams)',
  insertMany: 'UserRepository.insertMany (chunked INSERT ... ON CONFLICT DO NOTHING RETURNING)',
  copyIn: 'UserRepository.copyIn (COPY, validated rows)',
};

/** One bulk-load measurement (the median round of a scenario). */
export interface BulkResult {
  scenario: BulkScenario;
  rows: number;
  rowsPerSec: number;
  ms: number;
  /** Highest ru_maxrss of the scenario's processes, MiB (module loading included: see baseRssMiB). */
  peakRssMiB: number;
  /** Highest sampled heapUsed during the load, MiB. */
  peakHeapMiB: number;
  /** RSS of the worker before the load began, MiB. */
  baseRssMiB: number;
}

type RunOutput = Omit<BulkResult, 'scenario' | 'rowsPerSec'>;

const WORKER = fileURLToPath(new URL('./bulk-load-worker.ts', import.meta.url));

/**
 * Loads `rows` users with each scenario, `rounds` times interleaved, each run in a fresh
 * process (clean peak RSS) into an emptied `users` table (same indexes and constraints for
 * every scenario). Keeps each scenario's median run by rows/s and its highest memory.
 */
export async function runBulkGroup(
  url: string,
  admin: pg.Pool,
  opts: { rows: number; rounds: number },
): Promise<BulkResult[]> {
  const runs = new Map<BulkScenario, RunOutput[]>();
  for (let r = 0; r < opts.rounds; r++) {
    for (const scenario of BULK_SCENARIOS) {
      await admin.query('truncate users restart identity');
      await admin.query('checkpoint');
      const out = await runWorker(url, scenario, opts.rows);
      if (out.rows !== opts.rows)
        throw new Error(`${scenario} loaded ${out.rows} rows, expected ${opts.rows}`);
      runs.set(scenario, [...(runs.get(scenario) ?? []), out]);
    }
  }
  await admin.query('truncate users restart identity');
  return BULK_SCENARIOS.map((scenario) => {
    const all = runs.get(scenario)!;
    const median = [...all].sort((a, b) => a.ms - b.ms)[Math.floor(all.length / 2)]!;
    return {
      scenario,
      rows: median.rows,
      ms: median.ms,
      rowsPerSec: (median.rows / median.ms) * 1000,
      peakRssMiB: Math.max(...all.map((o) => o.peakRssMiB)),
      peakHeapMiB: Math.max(...all.map((o) => o.peakHeapMiB)),
      baseRssMiB: Math.max(...all.map((o) => o.baseRssMiB)),
    };
  });
}

/** Prints the bulk group with ratios against both raw pg baselines, each named in its column. */
export function reportBulk(title: string, results: BulkResult[]): void {
  const copy = results.find((r) => r.scenario === 'raw-copy')!;
  const insert = results.find((r) => r.scenario === 'raw-insert')!;
  console.log(`\n## ${title}`);
  console.log(
    '| scenario | rows/s | ratio vs raw pg COPY | ratio vs raw pg INSERT | seconds | peak RSS MiB (worker at start) | peak heap MiB |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    console.log(
      `| ${LABELS[r.scenario]} | ${r.rowsPerSec.toFixed(0)} | ${(r.rowsPerSec / copy.rowsPerSec).toFixed(2)}x | ${(r.rowsPerSec / insert.rowsPerSec).toFixed(2)}x | ${(r.ms / 1000).toFixed(2)} | ${r.peakRssMiB.toFixed(0)} (${r.baseRssMiB.toFixed(0)}) | ${r.peakHeapMiB.toFixed(0)} |`,
    );
  }
}

function runWorker(url: string, scenario: BulkScenario, rows: number): Promise<RunOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
      env: { ...process.env, BENCH_URL: url, BENCH_BULK_SCENARIO: scenario, BENCH_BULK_ROWS: String(rows) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0) return reject(new Error(`bulk worker ${scenario} exited with ${code}: ${last}`));
      try {
        resolve(JSON.parse(last) as RunOutput);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}
