import { performance, PerformanceObserver } from 'node:perf_hooks';

/** One measured scenario: `ops` operations run with `concurrency` in flight. */
export interface BenchResult {
  name: string;
  ops: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Client (this process) CPU time per operation, user + system, µs (it too moves with load: fewer ops per syscall). */
  cpuUsPerOp: number;
  /** Time this process spent in garbage collection per operation, µs (part of `cpuUsPerOp`). */
  gcUsPerOp: number;
  /**
   * Set by `compare`: the median over rounds of this scenario's throughput divided by the
   * baseline's in the same round (paired, so load that drifts between rounds cancels out).
   */
  ratio?: number;
}

/** A `compare` result: the median round, plus every round kept for paired ratios and spreads. */
export interface ComparedResult extends BenchResult {
  ratio: number;
  /** This scenario's measurement in each round, in round order (round r of every scenario ran in the same pass). */
  rounds: BenchResult[];
}

/**
 * Runs `op` `ops` times with `concurrency` calls in flight after a warm-up, and reports
 * throughput, latency percentiles, client CPU and GC time. Hand-written rather than a
 * benchmark library because we need concurrency against a shared pool and one process
 * comparing several stacks.
 */
export async function measure(
  name: string,
  op: (i: number) => PromiseLike<unknown>,
  opts: { ops: number; concurrency: number; warmup?: number },
): Promise<BenchResult> {
  const warmup = opts.warmup ?? Math.min(500, Math.floor(opts.ops / 5));
  for (let i = 0; i < warmup; i++) await op(i);
  const latencies = new Float64Array(opts.ops);
  let next = 0;
  let gcMs = 0;
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcMs += e.duration;
  });
  gc.observe({ entryTypes: ['gc'] });
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < opts.ops) {
      const i = next++;
      const t0 = performance.now();
      await op(i);
      latencies[i] = performance.now() - t0;
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const elapsed = performance.now() - started;
  const cpu = process.cpuUsage(cpu0);
  for (const e of gc.takeRecords()) gcMs += e.duration;
  gc.disconnect();
  latencies.sort();
  return {
    name,
    ops: opts.ops,
    opsPerSec: (opts.ops / elapsed) * 1000,
    p50Ms: latencies[Math.floor(opts.ops * 0.5)] ?? 0,
    p99Ms: latencies[Math.floor(opts.ops * 0.99)] ?? 0,
    cpuUsPerOp: (cpu.user + cpu.system) / opts.ops,
    gcUsPerOp: (gcMs * 1000) / opts.ops,
  };
}

/**
 * Prints a group of results as a table with each row's throughput as a ratio of the
 * baseline's (named in the header).
 */
export function report(title: string, results: BenchResult[], baseline: BenchResult): void {
  console.log(`\n## ${title}`);
  console.log(
    `| scenario | ops/s (median round) | ratio vs ${baseline.name} (median of per-round ratios) | p50 ms | p99 ms | client CPU µs/op (median) |`,
  );
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const ratio = r.ratio ?? r.opsPerSec / baseline.opsPerSec;
    console.log(
      `| ${r.name} | ${r.opsPerSec.toFixed(0)} | ${ratio.toFixed(2)}x | ${r.p50Ms.toFixed(3)} | ${r.p99Ms.toFixed(3)} | ${r.cpuUsPerOp.toFixed(0)} |`,
    );
  }
}

/** A named operation to measure. */
export interface Scenario {
  name: string;
  /** A promise or a thenable (a knex or objection builder runs when awaited). */
  op: (i: number) => PromiseLike<unknown>;
}

/** The middle value (the upper one of an even count). */
export function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

/**
 * Measures every scenario `rounds` times, interleaved, the order rotated by one each round
 * (A B C, B C A, C A B ...): on a shared 2-core machine load drifts, and each scenario also
 * pays for the one before it (GC debt, autovacuum), so no scenario always goes first or
 * always follows the same neighbour. Every op runs once before the first round, so wrappers a
 * stack installs lazily (TxManager's foreign-connection guard on `db.driver()`) are in place
 * for every scenario of every round.
 *
 * Each result is the scenario's median round by throughput, except `cpuUsPerOp` and
 * `gcUsPerOp`, which are medians over rounds of their own; `ratio` is the median of its
 * per-round throughput ratios against the first scenario (the baseline); `rounds` keeps every
 * round for other paired ratios.
 */
export async function compare(
  scenarios: Scenario[],
  opts: { ops: number; concurrency: number; rounds?: number },
): Promise<ComparedResult[]> {
  const rounds = opts.rounds ?? 3;
  for (const [i, s] of scenarios.entries()) await s.op(i);
  const byName = new Map<string, BenchResult[]>(scenarios.map((s) => [s.name, []]));
  for (let r = 0; r < rounds; r++) {
    const offset = r % scenarios.length;
    for (const s of [...scenarios.slice(offset), ...scenarios.slice(0, offset)]) {
      const result = await measure(s.name, s.op, { ...opts, warmup: r === 0 ? undefined : 50 });
      byName.get(s.name)!.push(result);
    }
  }
  const baseline = byName.get(scenarios[0]!.name)!;
  return scenarios.map((s) => {
    const runs = byName.get(s.name)!;
    const mid = [...runs].sort((a, b) => a.opsPerSec - b.opsPerSec)[Math.floor(runs.length / 2)]!;
    return {
      ...mid,
      cpuUsPerOp: median(runs.map((run) => run.cpuUsPerOp)),
      gcUsPerOp: median(runs.map((run) => run.gcUsPerOp)),
      ratio: median(runs.map((run, r) => run.opsPerSec / baseline[r]!.opsPerSec)),
      rounds: runs,
    };
  });
}
