import pg from 'pg';
import { PostgresDatabase } from '../src/db/index.js';
import { compare, median, type ComparedResult } from './bench-harness.js';
import { benchConfig } from './bench-setup.js';
import { sentStatements } from './sent-statements.js';
import { captureRmwSql, createAccounts, TX_ROWS, txScenarios } from './tx-scenarios.js';

type Logger = ConstructorParameters<typeof PostgresDatabase>[1];

/** The cost target: the manager adds at most this much client CPU per transaction over bare knex. */
export const TX_CPU_TARGET = 1.1;

/** How the transaction group runs. */
export interface TxGroupOptions {
  ops: number;
  concurrency: number;
  /** Connections of both pools: raw pg's pg.Pool and the database's knex pool. */
  pool: number;
  rounds: number;
}

/**
 * The transaction group: a read-modify-write transaction (BEGIN; SELECT ... FOR UPDATE;
 * UPDATE; COMMIT) through raw pg, bare `knex.transaction` on the database's own knex, and
 * TxManager (without the xid statement: the apples-to-apples row; default; with a timeout),
 * on pools of `pool` connections created for this group, then printed by `reportTxGroup`.
 */
export async function runTxGroup(url: string, logger: Logger, opts: TxGroupOptions): Promise<void> {
  const rawPool = new pg.Pool({ connectionString: url, max: opts.pool });
  // pg#2762: without a listener an idle client's error (the server stopping) crashes the process.
  rawPool.on('error', () => {});
  const db = new PostgresDatabase(
    benchConfig(url, { maxOpenConns: opts.pool, maxIdleConns: opts.pool }),
    logger,
  );
  try {
    await db.connect();
    await createAccounts(rawPool);
    const sql = await captureRmwSql(db.driver());
    const scenarios = txScenarios({ rawPool, db, logger, sql });
    const statements = new Map<string, string[]>();
    for (const [i, s] of scenarios.entries()) {
      await s.op(i); // the first use of a knex instance also asks for the server version
      statements.set(s.name, await sentStatements(() => s.op(i + 1)));
    }
    const results = await compare(scenarios, opts);
    reportTxGroup(
      `Read-modify-write transactions (BEGIN; SELECT ... FOR UPDATE; UPDATE; COMMIT); ${opts.ops} tx x ${opts.rounds} rounds (order rotated), ${opts.concurrency} in flight, pool ${opts.pool}`,
      results,
      statements,
    );
  } finally {
    await db.close();
    await rawPool.end();
  }
}

/**
 * Prints the group: throughput against raw pg and client CPU per transaction against bare
 * knex, each the median of per-round paired ratios with its spread (min-max over rounds), and
 * whether the manager's apples-to-apples row meets `TX_CPU_TARGET`.
 */
export function reportTxGroup(
  title: string,
  results: ComparedResult[],
  statements: ReadonlyMap<string, string[]>,
): void {
  const byName = new Map(results.map((r) => [r.name, r]));
  const row = (name: string): ComparedResult => {
    const r = byName.get(name);
    if (!r) throw new Error(`no result for ${name}`);
    return r;
  };
  const raw = row(TX_ROWS.raw);
  const knex = row(TX_ROWS.knex);
  const paired = (
    r: ComparedResult,
    base: ComparedResult,
    of: (x: ComparedResult['rounds'][number]) => number,
  ) => r.rounds.map((run, i) => of(run) / of(base.rounds[i]!));
  const spread = (xs: number[], digits = 2): string =>
    `${median(xs).toFixed(digits)}x (${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)})`;
  const cpus = (r: ComparedResult): string => {
    const xs = r.rounds.map((run) => run.cpuUsPerOp);
    return `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)})`;
  };
  console.log(`\n## ${title}`);
  console.log(
    '| scenario | statements/tx | tx/s (median round) | throughput vs raw pg (median of rounds, min-max) | client CPU µs/tx (median, min-max) | CPU vs bare knex (median of rounds, min-max) | GC µs/tx | p50 ms | p99 ms |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const sent = statements.get(r.name) ?? [];
    console.log(
      `| ${r.name} | ${sent.length} | ${r.opsPerSec.toFixed(0)} | ${spread(paired(r, raw, (x) => x.opsPerSec))} | ${cpus(r)} | ${spread(paired(r, knex, (x) => x.cpuUsPerOp))} | ${r.gcUsPerOp.toFixed(0)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} |`,
    );
  }
  console.log('\nStatements per transaction, as pg sent them:');
  for (const r of results) console.log(`- ${r.name}: ${(statements.get(r.name) ?? []).join(' / ')}`);
  const target = paired(row(TX_ROWS.managerNoXid), knex, (x) => x.cpuUsPerOp);
  const throughput = paired(row(TX_ROWS.managerNoXid), knex, (x) => x.opsPerSec);
  const verdict = median(target) <= TX_CPU_TARGET ? 'met' : 'NOT met';
  console.log(
    `\nTarget (manager CPU/tx <= ${TX_CPU_TARGET.toFixed(2)} x bare knex, xid statement aside): TxManager resolveLostCommit: false / bare knex: CPU ${spread(target)}, throughput ${spread(throughput)}: ${verdict}.`,
  );
}
