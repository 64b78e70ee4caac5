import { performance } from 'node:perf_hooks';

/** One measured scenario: `ops` operations run with `concurrency` in flight. */
export interface BenchResult {
  name: string;
  ops: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Client (this process) CPU time per operation, user + system, µs (it too moves with load: fewer ops per syscall). */
  cpuUsPerOp: number;
  /**
   * Set by `compare`: the median over rounds of this scenario's throughput divided by the
   * baseline's in the same round (paired, so load that drifts between rounds cancels out).
   */
  ratio?: number;
}

/**
 * Runs `op` `ops` times with `concurrency` calls in flight after a warm-up, and reports
 * throughput and latency percentiles. Hand-written rather than a benchmark library because
 * we need concurrency against a shared pool and one process comparing several stacks.
 */
export async function measure(
  name: string,
  op: (i: number) => Promise<unknown>,
  opts: { ops: number; concurrency: number; warmup?: number },
): Promise<BenchResult> {
  const warmup = opts.warmup ?? Math.min(500, Math.floor(opts.ops / 5));
  for (let i = 0; i < warmup; i++) await op(i);
  const latencies = new Float64Array(opts.ops);
  let next = 0;
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
  latencies.sort();
  return {
    name,
    ops: opts.ops,
    opsPerSec: (opts.ops / elapsed) * 1000,
    p50Ms: latencies[Math.floor(opts.ops * 0.5)] ?? 0,
    p99Ms: latencies[Math.floor(opts.ops * 0.99)] ?? 0,
    cpuUsPerOp: (cpu.user + cpu.system) / opts.ops,
  };
}

/**
 * Prints a group of results as a table with each row's throughput as a ratio of the
 * baseline's (named in the header).
 */
export function report(title: string, results: BenchResult[], baseline: BenchResult): void {
  console.log(`\n## ${title}`);
  console.log(
    `| scenario | ops/s (median round) | ratio vs ${baseline.name} (median of per-round ratios) | p50 ms | p99 ms | client CPU µs/op |`,
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
  op: (i: number) => Promise<unknown>;
}

/**
 * Measures every scenario `rounds` times, interleaved (A B C A B C ...), and keeps each one's
 * median round: on a shared 2-core machine, load drifts, and interleaving spreads the drift
 * over all scenarios instead of penalising whichever ran first. Each result's `ratio` is the
 * median of its per-round ratios against the first scenario (the baseline).
 */
export async function compare(
  scenarios: Scenario[],
  opts: { ops: number; concurrency: number; rounds?: number },
): Promise<BenchResult[]> {
  const rounds = opts.rounds ?? 3;
  const byName = new Map<string, BenchResult[]>();
  for (let r = 0; r < rounds; r++) {
    for (const s of scenarios) {
      const result = await measure(s.name, s.op, { ...opts, warmup: r === 0 ? undefined : 50 });
      byName.set(s.name, [...(byName.get(s.name) ?? []), result]);
    }
  }
  const baseline = byName.get(scenarios[0]!.name)!;
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return scenarios.map((s) => {
    const runs = byName.get(s.name)!;
    const result = [...runs].sort((a, b) => a.opsPerSec - b.opsPerSec)[Math.floor(runs.length / 2)]!;
    return { ...result, ratio: median(runs.map((run, r) => run.opsPerSec / baseline[r]!.opsPerSec)) };
  });
}
