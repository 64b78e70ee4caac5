import os from 'node:os';
import type { LoadResult, Route } from './load-generator.js';

/** Which server a measurement drove. */
export type Side = 'baseline' | 'service';

/** One measured run. */
export interface Measured {
  round: number;
  route: Route;
  side: Side;
  result: LoadResult;
}

/** How the run was made, for the table's heading. */
export interface RunInfo {
  generator: string;
  rounds: number;
  durationS: number;
  connections: number;
  threads: number;
  seconds: number;
}

/** The row label of each route (the test of `--quick` looks for every one). */
export const ROUTE_LABELS: Record<Route, string> = {
  get: 'GET /users/:id',
  list: 'GET /users?limit=50',
  post: 'POST /users',
  patch: 'PATCH /users/:id',
};

/** wrk runs its own threads; autocannon runs in the bench process (its event loop). */
function threadsOf(info: RunInfo): string {
  return info.generator === 'wrk' ? `${info.threads} threads` : 'in the bench process';
}

function median(values: number[]): number {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const f0 = (v: number): string => (Number.isFinite(v) ? v.toFixed(0) : '-');
const f2 = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : '-');

/**
 * Prints one markdown row per route: median req/s and latencies of each side over the rounds,
 * and the ratio service/baseline as the median of the per-round ratios (each round pairs
 * the two sides run back to back), with the range of those ratios as the spread.
 */
export function printResults(measured: Measured[], info: RunInfo): void {
  const [load1] = os.loadavg();
  console.log(
    `\n### HTTP service vs bare Fastify + pg (${info.generator}, ${threadsOf(info)}, ${info.connections} connections, ` +
      `${info.rounds} round(s) x ${info.durationS} s, ${os.cpus().length} cores, load average ${load1!.toFixed(1)} at the end, ${info.seconds.toFixed(0)} s)\n`,
  );
  console.log(
    '| route | bare req/s | service req/s | ratio | ratio range | bare p50 / p99 ms | service p50 / p99 ms | errors bare / service |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  const routes = [...new Set(measured.map((m) => m.route))];
  for (const route of routes) {
    const of = (side: Side): LoadResult[] =>
      measured.filter((m) => m.route === route && m.side === side).map((m) => m.result);
    const bare = of('baseline');
    const svc = of('service');
    const ratios: number[] = [];
    for (const m of measured.filter((x) => x.route === route && x.side === 'service')) {
      const pair = measured.find((x) => x.route === route && x.side === 'baseline' && x.round === m.round);
      if (pair) ratios.push(m.result.rps / pair.result.rps);
    }
    const lat = (rs: LoadResult[]): string =>
      rs.length ? `${f2(median(rs.map((r) => r.p50Ms)))} / ${f2(median(rs.map((r) => r.p99Ms)))}` : '-';
    const errors = (rs: LoadResult[]): string =>
      rs.length ? String(rs.reduce((s, r) => s + r.errors, 0)) : '-';
    const range = ratios.length ? `${f2(Math.min(...ratios))}-${f2(Math.max(...ratios))}` : '-';
    console.log(
      `| ${ROUTE_LABELS[route]} | ${f0(median(bare.map((r) => r.rps)))} | ${f0(median(svc.map((r) => r.rps)))} | ` +
        `${ratios.length ? `${f2(median(ratios))}x` : '-'} | ${range} | ${lat(bare)} | ${lat(svc)} | ${errors(bare)} / ${errors(svc)} |`,
    );
  }
}
