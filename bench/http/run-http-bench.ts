/**
 * `npm run bench:http`: the service (`src/main.ts`, as `npm start` runs it, LOG_LEVEL=warn)
 * against a bare Fastify 5 + pg baseline (`baseline-server.ts`), both on one throwaway embedded
 * PostgreSQL, driven in the same run by wrk (when on PATH) or autocannon, in alternating
 * rounds. Prints req/s, p50/p99 and the service/baseline ratio per route as markdown; stops by
 * itself (about 2.5 min with the defaults, loopback only). See docs/benchmarks.md.
 *
 * ```sh
 * npm run bench:http                        # 3 rounds x 5 s per route and server
 * npm run bench:http -- --quick             # 1 round x 1 s: proves it runs (a few seconds of load)
 * npm run bench:http -- --rounds 5 --duration 8 --routes get,patch
 * npm run bench:http -- --quick --generator autocannon   # the fallback when wrk is not installed
 * npm run bench:http -- --routes post,patch --service-env DB_TX_RESOLVE_LOST_COMMIT=false
 * # a CPU profile of the service under load only (written when it exits):
 * npm run bench:http -- --only service --routes get --cpu-prof /tmp/prof
 * npx tsx bench/cpu-profile-summary.ts /tmp/prof/*.cpuprofile
 * ```
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startBaseline, startDatabase, startService, type BenchProcess } from './bench-processes.js';
import { loadGeneratorName, runLoad, ROUTES, type LoadResult, type Route } from './load-generator.js';
import { printResults, type Measured, type Side } from './print-results.js';

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    routes: { type: 'string' },
    only: { type: 'string' },
    'cpu-prof': { type: 'string' },
    connections: { type: 'string', default: '32' },
    threads: { type: 'string', default: '2' },
    generator: { type: 'string' },
    'service-env': { type: 'string', multiple: true },
  },
});

const quick = flags.quick;
const rounds = Number(flags.rounds ?? (quick ? 1 : 3));
const durationS = Number(flags.duration ?? (quick ? 1 : 5));
const warmupS = quick ? 1 : 2;
const seedUsers = quick ? 1_000 : 10_000;
/** Users patched round robin: enough that no two requests in flight touch the same one. */
const patchUsers = seedUsers;
const routes = (flags.routes?.split(',') ?? [...ROUTES]) as Route[];
const sides: Side[] = flags.only ? [flags.only as Side] : ['baseline', 'service'];
const connections = Number(flags.connections);
const threads = Number(flags.threads);
for (const r of routes)
  if (!ROUTES.includes(r)) throw new Error(`unknown route ${r}; one of ${ROUTES.join(', ')}`);
for (const s of sides)
  if (s !== 'baseline' && s !== 'service') throw new Error(`--only takes baseline or service`);

// The bench must stop by itself even if a child hangs: a hard bound well past the planned time.
const plannedS = 60 + routes.length * sides.length * (rounds * (durationS + 1) + warmupS);
setTimeout(() => {
  console.error(`bench:http: still running after ${plannedS * 2} s; giving up`);
  process.exit(2);
}, plannedS * 2_000).unref();

/** `--service-env KEY=VALUE` (repeatable): extra settings of the service, e.g. `DB_TX_RESOLVE_LOST_COMMIT=false`. */
function serviceEnv(): Record<string, string> {
  const pairs = (flags['service-env'] ?? []).map((kv) => {
    const eq = kv.indexOf('=');
    if (eq < 1) throw new Error(`--service-env takes KEY=VALUE, not ${kv}`);
    return [kv.slice(0, eq), kv.slice(eq + 1)];
  });
  return Object.fromEntries(pairs) as Record<string, string>;
}

/** With `--cpu-prof DIR`: DIR/service and DIR/baseline, one profile per process, written at its exit. */
function profileDir(side: Side): string | undefined {
  return flags['cpu-prof'] && path.join(flags['cpu-prof'], side);
}

async function main(): Promise<void> {
  const started = Date.now();
  const generator = (flags.generator ?? loadGeneratorName()) as 'wrk' | 'autocannon';
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgdl-bench-http-run-'));
  const db = await startDatabase('pgdl_http_bench');
  const servers: Partial<Record<Side, BenchProcess>> = {};
  const sql = new pg.Client({ connectionString: db.url });
  try {
    // The service runs the migrations at start; the baseline needs the table, so it comes second.
    servers.service = await startService(db.url, profileDir('service'), serviceEnv());
    await sql.connect();
    await sql.query(
      `insert into users (email, name)
       select 'seed-' || g || '@example.com', 'Seed User ' || g from generate_series(1, $1::int) g`,
      [seedUsers],
    );
    await sql.query('analyze users');
    if (sides.includes('baseline')) servers.baseline = await startBaseline(db.url, profileDir('baseline'));

    const versionsFile = path.join(tmp, 'versions.txt');
    const run = async (side: Side, route: Route, seconds: number, tag: string): Promise<LoadResult> => {
      if (route === 'patch') {
        // Requests cut off at the end of the previous run may still commit: let them land first.
        await new Promise((r) => setTimeout(r, 300));
        const { rows } = await sql.query<{ id: string; version: number }>(
          'select id, version from users where id <= $1 order by id',
          [patchUsers],
        );
        writeFileSync(versionsFile, rows.map((r) => `${r.id} ${r.version}\n`).join(''));
      }
      return runLoad(
        {
          url: servers[side]!.url,
          route,
          durationS: seconds,
          connections,
          threads,
          maxId: seedUsers,
          tag,
          versionsFile,
        },
        generator,
      );
    };

    console.error(`bench:http: ${generator}, ${rounds} round(s) x ${durationS} s, warm-up ${warmupS} s`);
    for (const route of routes)
      for (const side of sides) {
        const warm = await run(side, route, warmupS, `warm-${side}-${started}`);
        console.error(`warm-up ${route} ${side}: ${warm.requests} requests (a profile counts them too)`);
      }
    const measured: Measured[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const route of routes) {
        // Alternate who goes first, so drift within a round does not favour one side.
        const order = round % 2 === 0 ? sides : [...sides].reverse();
        for (const side of order) {
          const result = await run(side, route, durationS, `${side}-${round}-${started}`);
          measured.push({ round, route, side, result });
          console.error(
            `round ${round + 1} ${route} ${side}: ${result.rps.toFixed(0)} req/s, p50 ${result.p50Ms.toFixed(2)} ms, ` +
              `p99 ${result.p99Ms.toFixed(2)} ms, ${result.requests} requests, errors ${result.errors}`,
          );
        }
      }
    }
    reportServiceLog(servers.service.output());
    printResults(measured, {
      generator,
      rounds,
      durationS,
      connections,
      threads,
      seconds: (Date.now() - started) / 1000,
    });
  } finally {
    await sql.end().catch(() => undefined);
    for (const s of Object.values(servers)) await s.stop();
    await db.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** What the service logged at warn and above during the run (retries, failed requests), counted by message. */
function reportServiceLog(output: string): void {
  const counts = new Map<string, number>();
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const l = JSON.parse(line) as { msg?: string; err?: { type?: string; code?: string } };
      const key = [l.msg, l.err?.type, l.err?.code].filter(Boolean).join(' / ');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    } catch {
      // a line cut at the start of the kept output
    }
  }
  for (const [key, n] of counts) console.error(`service log: ${n} x ${key}`);
}

await main();
process.exit(0);
