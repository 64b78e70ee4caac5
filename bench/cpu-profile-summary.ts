/**
 * Summarises V8 CPU profiles (`.cpuprofile`) and sampling heap profiles (`.heapprofile`):
 * self time (or allocated bytes) by category, by file (top 25) and by function (top 25);
 * given two profiles, also what the second spends beyond the first, by category, file and
 * function. `(idle)` is left out of every total (it is the event loop waiting on the server).
 * CPU time is samples x the median sampling interval (see `load`).
 *
 * Usage (profiles of the same number of transactions, so differences are per the same work):
 * ```sh
 * # profiles of the measured transactions only (no setup), 3 interleaved rounds per stack:
 * BENCH_CPU_PROFILE_DIR=/tmp/prof BENCH_PROFILE_ROUNDS=3 BENCH_OPS=5000 BENCH_ONLY='^(knex|managerNoXid)$' \
 *   npx tsx bench/tx-profile.ts
 * npx tsx bench/cpu-profile-summary.ts --ops 5000 /tmp/prof/knex.*.cpuprofile --vs /tmp/prof/managerNoXid.*.cpuprofile
 * # or the whole process: setup, tx-profile's counting pass (1000 tx under an async hook) and
 * # warm-up included, so compare the totals in ms (no --ops); the main thread's file is
 * # CPU.*.0.*.cpuprofile (thread 1 is tsx's module loader):
 * BENCH_ONLY='^knex$' node --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof-a bench/tx-profile.ts
 * BENCH_ONLY='^managerNoXid$' node --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof-b bench/tx-profile.ts
 * npx tsx bench/cpu-profile-summary.ts /tmp/prof-a/CPU.*.0.*.cpuprofile /tmp/prof-b/CPU.*.0.*.cpuprofile
 * # allocations (BENCH_HEAP_PROFILE=1 also writes DIR/<stack>[.<round>].heapprofile, collected objects included):
 * BENCH_HEAP_PROFILE=1 BENCH_CPU_PROFILE_DIR=/tmp/prof BENCH_ONLY='^(knex|managerNoXid)$' npx tsx bench/tx-profile.ts
 * npx tsx bench/cpu-profile-summary.ts --ops 5000 /tmp/prof/knex.heapprofile /tmp/prof/managerNoXid.heapprofile
 * ```
 * Several profiles per side (`A1 A2 A3 --vs B1 B2 B3`, e.g. BENCH_PROFILE_ROUNDS=3) are summed
 * per side, which averages out a round disturbed by other load. Options:
 * - `--ops N`: transactions per file; prints µs (bytes) per transaction.
 * - `--top N`: rows per table instead of 25.
 * - `--inclusive REGEX` (CPU): the inclusive time (itself and what it calls synchronously) of
 *   the functions whose `file:function:line` matches, e.g. 'src/db/tx|cockatiel'.
 * - `--own REGEX` (CPU): each sample charged to its nearest frame matching REGEX unless a
 *   library frame (`--until REGEX`, default knex, tarn, pg*, objection, lodash, bench/) is
 *   nearer: the CPU of the code under study itself, builtins and promise hooks it triggers
 *   included, the knex/pg work it asks for excluded. E.g. `--own 'src/db/tx|cockatiel|prom-client'`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber?: number;
}
interface CpuNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: CpuNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}
interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}
interface HeapProfile {
  head: HeapNode;
}

/** One profile reduced to self cost per function: µs of CPU, or bytes allocated. */
interface Costs {
  unit: 'us' | 'bytes';
  byFunction: Map<string, number>;
  /** Function key -> its file and category. */
  where: Map<string, { file: string; category: string }>;
  /**
   * CPU profiles only: time with the function anywhere on the (synchronous) stack, itself and
   * everything it called, each sample counted once per function.
   */
  inclusive: Map<string, number>;
  /** CPU profiles with `--own`: time charged to the nearest `--own` frame (see `ownedBy`). */
  owned: Map<string, number>;
}

/** `--own REGEX --until REGEX`: which frames are the code under study, and which are its callees' libraries. */
interface Ownership {
  own: RegExp;
  until: RegExp;
}

const ROOT = process.cwd();

/** Where a frame's code lives, in the terms the transaction-core issue asks about. */
function categoryOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName.startsWith('(')) return functionName; // (garbage collector), (program), (root)
    return 'native / builtins (no url)';
  }
  if (/async_hooks|async_local_storage|async_context/.test(url)) return 'async hooks / AsyncLocalStorage';
  if (/node:internal\/process\/task_queues|node:internal\/timers|node:timers/.test(url))
    return 'node: task queues / timers';
  if (url.startsWith('node:')) return 'node internals (other)';
  const file = url.replace(/^file:\/\//, '');
  const mod = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
  if (mod) {
    const name = mod[1]!;
    if (/^pg(-|$)/.test(name)) return 'pg (pg, pg-protocol, pg-types, pg-pool)';
    if (name === 'knex' || name === 'tarn') return `${name}`;
    return `node_modules/${name}`;
  }
  const rel = path.relative(ROOT, file);
  if (rel.startsWith('src/db/tx/')) return 'ours: src/db/tx';
  if (rel.startsWith('src/db/')) return 'ours: src/db (not tx)';
  if (rel.startsWith('src/')) return `ours: ${rel.split('/').slice(0, 2).join('/')}`;
  if (rel.startsWith('bench/')) return 'bench (the workload itself)';
  return 'other';
}

function fileOf(frame: CallFrame): string {
  if (!frame.url) return frame.functionName.startsWith('(') ? frame.functionName : '(native)';
  const file = frame.url.replace(/^file:\/\//, '');
  const mod = file.lastIndexOf('node_modules/');
  if (mod >= 0) return file.slice(mod + 'node_modules/'.length);
  return file.startsWith('/') ? path.relative(ROOT, file) : file;
}

function keyOf(frame: CallFrame): string {
  if (!frame.url) return frame.functionName || '(anonymous native)';
  return `${fileOf(frame)}:${frame.functionName || '(anonymous)'}:${frame.lineNumber + 1}`;
}

function add(costs: Costs, frame: CallFrame, amount: number): void {
  if (amount === 0 || frame.functionName === '(idle)') return;
  const key = keyOf(frame);
  costs.byFunction.set(key, (costs.byFunction.get(key) ?? 0) + amount);
  if (!costs.where.has(key)) costs.where.set(key, { file: fileOf(frame), category: categoryOf(frame) });
}

function load(file: string, ownership?: Ownership): Costs {
  const json = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile | HeapProfile;
  if ('head' in json) {
    const costs: Costs = {
      unit: 'bytes',
      byFunction: new Map(),
      where: new Map(),
      inclusive: new Map(),
      owned: new Map(),
    };
    const stack: HeapNode[] = [json.head];
    while (stack.length > 0) {
      const node = stack.pop()!;
      add(costs, node.callFrame, node.selfSize);
      stack.push(...node.children);
    }
    return costs;
  }
  const costs: Costs = {
    unit: 'us',
    byFunction: new Map(),
    where: new Map(),
    inclusive: new Map(),
    owned: new Map(),
  };
  const frames = new Map(json.nodes.map((n) => [n.id, n.callFrame]));
  const parents = new Map<number, number>();
  for (const n of json.nodes) for (const child of n.children ?? []) parents.set(child, n.id);
  // Each sample counts as one median interval, not as the time until the next sample: on a
  // shared machine the thread is often descheduled between two samples, and that wait (not
  // CPU) would be charged to whatever function was on the stack (often writev). Counting
  // samples tracks process.cpuUsage(); the raw deltas overstate it by 30-80 % under load.
  const deltas = [...json.timeDeltas].sort((a, b) => a - b);
  const interval = deltas[Math.floor(deltas.length / 2)] ?? 0;
  for (const id of json.samples) {
    const leaf = frames.get(id)!;
    add(costs, leaf, interval);
    if (leaf.functionName === '(idle)') continue;
    const seen = new Set<string>();
    for (let node: number | undefined = id; node !== undefined; node = parents.get(node))
      seen.add(keyOf(frames.get(node)!));
    for (const key of seen) costs.inclusive.set(key, (costs.inclusive.get(key) ?? 0) + interval);
    const owner = ownership && ownedBy(id, frames, parents, ownership);
    if (owner) costs.owned.set(owner, (costs.owned.get(owner) ?? 0) + interval);
  }
  return costs;
}

/**
 * The code under study that a sample is charged to: walking from the leaf towards the root,
 * the first frame matching `own`, unless a frame matching `until` comes first (then the
 * sample is work of a library the code called: knex building a query, pg writing it).
 * Builtins on the way (a Promise constructor, WeakMap#set) are charged to their caller.
 */
function ownedBy(
  leaf: number,
  frames: Map<number, CallFrame>,
  parents: Map<number, number>,
  { own, until }: Ownership,
): string | undefined {
  for (let node: number | undefined = leaf; node !== undefined; node = parents.get(node)) {
    const key = keyOf(frames.get(node)!);
    if (own.test(key)) return key;
    if (until.test(key)) return undefined;
  }
  return undefined;
}

function group(costs: Costs, by: 'file' | 'category'): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, v] of costs.byFunction) {
    const g = costs.where.get(key)![by];
    out.set(g, (out.get(g) ?? 0) + v);
  }
  return out;
}

function total(m: Map<string, number>): number {
  let s = 0;
  for (const v of m.values()) s += v;
  return s;
}

function fmt(v: number, unit: Costs['unit'], ops: number | undefined): string {
  if (ops) return unit === 'us' ? `${(v / ops).toFixed(1)} µs/tx` : `${(v / ops).toFixed(0)} B/tx`;
  return unit === 'us' ? `${(v / 1000).toFixed(1)} ms` : `${(v / 1024).toFixed(0)} KiB`;
}

function table(title: string, m: Map<string, number>, c: Costs, ops: number | undefined, top: number): void {
  const all = total(m);
  console.log(`\n### ${title} (total ${fmt(all, c.unit, ops)}, idle excluded)`);
  console.log(`| ${c.unit === 'us' ? 'self time' : 'allocated'} | share | where |`);
  console.log('|---:|---:|---|');
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(`| ${fmt(v, c.unit, ops)} | ${((v / all) * 100).toFixed(1)}% | ${k} |`);
}

/** Inclusive times: overlapping (a caller includes its callees), so no shares and no total. */
function inclusiveTable(
  title: string,
  m: Map<string, number>,
  c: Costs,
  ops: number | undefined,
  top: number,
): void {
  const busy = total(c.byFunction);
  console.log(`\n### ${title} (the function and all it calls synchronously; share of all busy time)`);
  console.log('| inclusive | share | function |');
  console.log('|---:|---:|---|');
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(`| ${fmt(v, c.unit, ops)} | ${((v / busy) * 100).toFixed(1)}% | ${k} |`);
}

/** What `b` spends beyond `a`, largest first; share = of the total difference. */
function diffTable(
  title: string,
  a: Map<string, number>,
  b: Map<string, number>,
  c: Costs,
  ops: number | undefined,
  top: number,
): void {
  const keys = new Set([...a.keys(), ...b.keys()]);
  const d = [...keys].map((k) => [k, (b.get(k) ?? 0) - (a.get(k) ?? 0)] as const);
  const extra = total(b) - total(a);
  console.log(`\n### ${title} (B - A = ${fmt(extra, c.unit, ops)})`);
  console.log(`| A | B | B - A | share of B - A | where |`);
  console.log('|---:|---:|---:|---:|---|');
  for (const [k, v] of d.sort((x, y) => y[1] - x[1]).slice(0, top))
    console.log(
      `| ${fmt(a.get(k) ?? 0, c.unit, ops)} | ${fmt(b.get(k) ?? 0, c.unit, ops)} | ${fmt(v, c.unit, ops)} | ${extra > 0 ? ((v / extra) * 100).toFixed(1) : '-'}% | ${k} |`,
    );
}

/** Several profiles of the same stack as one: costs summed, so `--ops` counts per file. */
function merge(all: Costs[]): Costs {
  const out: Costs = {
    unit: all[0]!.unit,
    byFunction: new Map(),
    where: new Map(),
    inclusive: new Map(),
    owned: new Map(),
  };
  for (const c of all) {
    if (c.unit !== out.unit) throw new Error('cannot merge a CPU profile with a heap profile');
    for (const [k, v] of c.byFunction) out.byFunction.set(k, (out.byFunction.get(k) ?? 0) + v);
    for (const [k, v] of c.inclusive) out.inclusive.set(k, (out.inclusive.get(k) ?? 0) + v);
    for (const [k, v] of c.owned) out.owned.set(k, (out.owned.get(k) ?? 0) + v);
    for (const [k, w] of c.where) out.where.set(k, w);
  }
  return out;
}

function main(argv: string[]): void {
  let ops: number | undefined;
  let top = 25;
  let inclusive: RegExp | undefined;
  let own: RegExp | undefined;
  let until = /^(knex|tarn|pg|pg-[a-z]+|objection|lodash)\/|^bench\//;
  const sides: string[][] = [[]];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--ops') ops = Number(argv[++i]);
    else if (argv[i] === '--top') top = Number(argv[++i]);
    else if (argv[i] === '--vs') sides.push([]);
    else if (argv[i] === '--inclusive') inclusive = new RegExp(argv[++i] ?? '');
    else if (argv[i] === '--own') own = new RegExp(argv[++i] ?? '');
    else if (argv[i] === '--until') until = new RegExp(argv[++i] ?? '');
    else sides[sides.length - 1]!.push(argv[i]!);
  }
  // Without --vs, two files are A and B.
  if (sides.length === 1 && sides[0]!.length === 2) sides.splice(0, 1, [sides[0]![0]!], [sides[0]![1]!]);
  if (sides.length > 2 || sides.some((f) => f.length === 0))
    throw new Error(
      'usage: cpu-profile-summary.ts [--ops N] [--top N] [--inclusive RE] [--own RE [--until RE]] A [B] | A1 A2 ... --vs B1 B2 ...',
    );
  const names = sides.map((files) => files.join(' + '));
  const ownership = own ? { own, until } : undefined;
  const profiles = sides.map((files) => merge(files.map((f) => load(f, ownership))));
  // --ops is per file: a side of k files ran k x N transactions.
  const perSide = sides.map((files) => (ops ? ops * files.length : undefined));
  for (const [i, c] of profiles.entries()) {
    console.log(`\n## ${sides.length === 2 ? (i === 0 ? 'A: ' : 'B: ') : ''}${names[i]}`);
    table('By category', group(c, 'category'), c, perSide[i], top);
    table('By file', group(c, 'file'), c, perSide[i], top);
    table('By function (file:function:line)', c.byFunction, c, perSide[i], top);
    if (inclusive && c.unit === 'us') {
      const matching = new Map([...c.inclusive].filter(([k]) => inclusive.test(k)));
      inclusiveTable(
        `Inclusive time of functions matching ${String(inclusive)}`,
        matching,
        c,
        perSide[i],
        top,
      );
    }
    if (ownership && c.unit === 'us')
      table(
        `Time of ${String(own)} itself, libraries it calls excluded (each sample charged to its nearest ${String(own)} frame unless a ${String(until)} frame is nearer)`,
        c.owned,
        c,
        perSide[i],
        top,
      );
  }
  if (profiles.length === 2) {
    const [a, b] = profiles as [Costs, Costs];
    if (a.unit !== b.unit) throw new Error('cannot compare a CPU profile with a heap profile');
    if (sides[0]!.length !== sides[1]!.length && ops === undefined)
      throw new Error('sides of different sizes: pass --ops so both are per transaction');
    // Per transaction on both sides (or raw totals when both sides have as many files).
    const scale = (c: Costs, n: number | undefined): Costs =>
      n === undefined
        ? c
        : { ...c, byFunction: new Map([...c.byFunction].map(([k, v]) => [k, (v / n) * (ops ?? 1)])) };
    const [sa, sb] = [scale(a, perSide[0]), scale(b, perSide[1])];
    console.log(`\n## B beyond A: (${names[1]}) - (${names[0]})`);
    diffTable('By category', group(sa, 'category'), group(sb, 'category'), a, ops, top);
    diffTable('By file', group(sa, 'file'), group(sb, 'file'), a, ops, top);
    diffTable('By function', sa.byFunction, sb.byFunction, a, ops, top);
  }
}

main(process.argv.slice(2));
