/**
 * The stacks comparison's vocabulary (stacks, paths, the result file's shape) and its markdown.
 * No side effects: the quick-mode test imports the labels from here.
 */

/** The stacks compared, in the summary's column order after the baseline. */
export const STACKS = [
  'pg',
  'product',
  'knex',
  'objection',
  'kysely',
  'pgPromise',
  'postgresJs',
  'pgNamed',
] as const;
export type StackKey = (typeof STACKS)[number];

export const STACK_LABELS: Record<StackKey, string> = {
  pg: 'raw pg (unnamed)',
  product: 'this product',
  knex: 'knex',
  objection: 'objection',
  kysely: 'kysely',
  pgPromise: 'pg-promise',
  postgresJs: 'postgres.js',
  pgNamed: 'pg named',
};

/** The paths measured, in table order. */
export const PATHS = ['read', 'insert', 'rmw', 'rmwRepo', 'bulkInsert', 'bulkCopy'] as const;
export type PathKey = (typeof PATHS)[number];

export const PATH_LABELS: Record<PathKey, string> = {
  read: 'point read by id',
  insert: 'single insert',
  rmw: 'read-modify-write tx (SELECT FOR UPDATE, UPDATE)',
  rmwRepo: 'read + optimistic update tx on users',
  bulkInsert: 'bulk multi-row INSERT',
  bulkCopy: 'bulk COPY',
};

/** The stacks each path has a way for (COPY is not in every library). */
export const PATH_STACKS: Record<PathKey, readonly StackKey[]> = {
  read: STACKS,
  insert: STACKS,
  rmw: STACKS,
  rmwRepo: STACKS,
  bulkInsert: STACKS,
  bulkCopy: ['pg', 'product', 'postgresJs'],
};

/** One stack on one path: the median round, and the paired ratios against raw pg of every round. */
export interface StackCell {
  stack: StackKey;
  /** What this stack runs on this path (`UserRepository.getById`, `knex.transaction + builder`...). */
  how: string;
  /** Operations (bulk: rows) per second, the median round. */
  perSec: number;
  /** Median over rounds of perSec / raw pg's perSec in the same round. */
  ratio: number;
  ratioMin: number;
  ratioMax: number;
  /** Latency percentiles per operation (bulk: the median load's duration for both), ms. */
  p50Ms: number;
  p99Ms: number;
  /** Client CPU (user + system) per operation (bulk: per 1000 rows), µs, median over rounds. */
  cpuUs: number;
  /** GC time per operation (bulk: per 1000 rows), µs, median over rounds. */
  gcUs: number;
  /** perSec of every round, in round order. */
  rounds: number[];
}

export interface PathResult {
  path: PathKey;
  /** In flight at once (bulk: one load at a time). */
  concurrency: number;
  /** Operations per scenario and round (bulk: rows per load). */
  ops: number;
  unit: 'ops/s' | 'rows/s';
  /** Statements each stack sends per operation, as pg saw them (bulk: not counted). */
  statements: Partial<Record<StackKey, string[]>>;
  cells: StackCell[];
}

/** The content of `latest.json`. */
export interface StacksRun {
  node: string;
  date: string;
  host: { cpus: number; cpuModel: string; loadAvgStart: number[]; loadAvgEnd: number[] };
  postgres: string;
  command: string;
  quick: boolean;
  rounds: number;
  pool: number;
  seconds: number;
  paths: PathResult[];
}

/** `0.87x`, or `n/a` for a stack with no way on the path. */
function ratioCell(cell: StackCell | undefined): string {
  return cell ? `${cell.ratio.toFixed(2)}x` : 'n/a';
}

/** A path's row title in the summary: `point read by id, c32` / `bulk COPY, 20000 rows`. */
export function pathTitle(p: Pick<PathResult, 'path' | 'concurrency' | 'ops' | 'unit'>): string {
  return p.unit === 'rows/s'
    ? `${PATH_LABELS[p.path]}, ${p.ops} rows`
    : `${PATH_LABELS[p.path]}, c${p.concurrency}`;
}

/**
 * The run as markdown: the summary (one row per path, one ratio column per stack against raw
 * pg with unnamed statements, raw pg's own throughput first), then one table per path.
 */
export function renderMarkdown(run: StacksRun): string {
  const out: string[] = [];
  const others = STACKS.filter((s) => s !== 'pg');
  out.push(
    `## Stacks side by side (node ${run.node}, ${run.date}, ${run.quick ? 'QUICK MODE: counts too small to mean anything, ' : ''}${run.rounds} round(s) rotated, pool ${run.pool})`,
    '',
    `Ratios: median of per-round throughput ratios against raw pg with unnamed statements on the same path (higher is faster). Machine: ${run.host.cpus} x ${run.host.cpuModel}, load average ${run.host.loadAvgStart.map((l) => l.toFixed(2)).join(' ')} at the start, ${run.host.loadAvgEnd.map((l) => l.toFixed(2)).join(' ')} at the end; ${run.postgres}; ${run.seconds.toFixed(0)} s. Command: \`${run.command}\`.`,
    '',
    `| path | raw pg (unnamed) | ${others.map((s) => STACK_LABELS[s]).join(' | ')} |`,
    `|---|--:|${others.map(() => '--:').join('|')}|`,
  );
  for (const p of run.paths) {
    const byStack = new Map(p.cells.map((c) => [c.stack, c]));
    const base = byStack.get('pg');
    out.push(
      `| ${pathTitle(p)} | ${base ? `${base.perSec.toFixed(0)} ${p.unit}` : 'n/a'} | ${others.map((s) => ratioCell(byStack.get(s))).join(' | ')} |`,
    );
  }
  for (const p of run.paths) {
    const bulk = p.unit === 'rows/s';
    out.push(
      '',
      `### ${pathTitle(p)} (${bulk ? `${p.ops} rows per load` : `${p.ops} ops per round`})`,
      '',
      `| stack | what runs | ${p.unit} (median round) | vs raw pg (median, min-max of rounds) | ${bulk ? 'ms per load | CPU µs per 1000 rows | GC µs per 1000 rows' : 'p50 ms | p99 ms | client CPU µs/op | GC µs/op'} | statements |`,
      `|---|---|--:|--:|${bulk ? '--:|--:|--:' : '--:|--:|--:|--:'}|--:|`,
    );
    for (const c of p.cells) {
      const sent = p.statements[c.stack];
      const timing = bulk
        ? `${c.p50Ms.toFixed(0)} | ${c.cpuUs.toFixed(0)} | ${c.gcUs.toFixed(0)}`
        : `${c.p50Ms.toFixed(2)} | ${c.p99Ms.toFixed(2)} | ${c.cpuUs.toFixed(0)} | ${c.gcUs.toFixed(0)}`;
      out.push(
        `| ${STACK_LABELS[c.stack]} | ${c.how} | ${c.perSec.toFixed(0)} | ${c.ratio.toFixed(2)}x (${c.ratioMin.toFixed(2)}-${c.ratioMax.toFixed(2)}) | ${timing} | ${sent ? sent.length : '-'} |`,
      );
    }
  }
  // The reads and inserts send one statement everywhere (the counts say so); the transactions differ.
  const sent = run.paths.filter((p) => p.path === 'rmw' || p.path === 'rmwRepo');
  out.push('', 'Statements per transaction, as pg (or postgres.js) received them:', '');
  for (const p of sent)
    for (const c of p.cells) {
      const s = p.statements[c.stack];
      if (s) out.push(`- ${PATH_LABELS[p.path]}, ${STACK_LABELS[c.stack]}: ${s.join(' / ')}`);
    }
  return `${out.join('\n')}\n`;
}
