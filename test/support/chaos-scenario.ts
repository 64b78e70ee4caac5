import { performance } from 'node:perf_hooks';
import type { PostgresConfig } from '../../src/config/app-config.js';
import { withPgClient } from '../../src/db/connection/with-pg-client.js';
import { CommitUnknownError } from '../../src/db/errors/errors.js';
import { PostgresDatabase } from '../../src/db/postgres-database.js';
import type { RetryReason } from '../../src/observability/metrics.js';
import { captureLogger, type CapturedLogger } from './capture-logger.js';
import type { DedicatedServer } from './embedded-test-server.js';
import {
  className,
  commitLookups,
  failedButWritten,
  idleInTransaction,
  isProductError,
  messageOf,
  runLedgerLoad,
  tally,
  type CommitLookups,
  type LedgerLoadOptions,
  type LoadResult,
  type Received,
} from './ledger-load.js';
import { metricValue } from './metric-value.js';
import { waitFor } from './postgres-database-helpers.js';
import { TcpProxy } from './tcp-proxy.js';
import { postgresConfigFromUrl } from './test-database.js';
import { auditLedger, createTransferLedger, type LedgerAudit } from './transfer-ledger.js';

/** One row of the chaos suite's summary table. */
export interface ChaosRow {
  scenario: string;
  acknowledged: number;
  /** Acknowledged transfers not in the ledger: must be 0. */
  ackedButMissing: number;
  typedErrors: number;
  untypedErrors: number;
  /** From the end of the fault to the first acknowledgement after it, ms; undefined: none came. */
  recoveryMs: number | undefined;
  /** What the fault did and what the callers got, in a few words. */
  notes: string;
}

/** What a scenario's fault and assertions can reach. */
export interface ChaosContext {
  ds: DedicatedServer;
  database: string;
  pdb: PostgresDatabase;
  /** The proxy the pool goes through (scenarios `via: 'proxy'`). */
  proxy: TcpProxy | undefined;
  /** Loads the fault ran of its own (an overload, a contention storm): counted in the row. */
  extraLoads: LoadResult[];
  /** Added to the row's notes. */
  notes: string[];
  /** The pool's log, warn and above (lost-COMMIT lookups among them). */
  log: CapturedLogger;
}

/** Everything a scenario found, after the pool and the server had settled. */
export interface ChaosFindings {
  row: ChaosRow;
  load: LoadResult;
  received: Received[];
  audit: LedgerAudit;
  missing: string[];
  untyped: Received[];
  /** Callers told of a failure although the transfer is in the ledger (CommitUnknownError aside: see `failedButWritten`). */
  failedButWritten: Received[];
  /** Lost COMMITs the manager looked up with pg_xact_status during the scenario, by outcome. */
  lookups: CommitLookups;
  inUse: number;
  leftOpen: Array<{ pid: number; state: string }>;
  /** db_transaction_retries_total during the scenario, by reason. */
  retries: Record<RetryReason, number>;
  /** How long the pool and the server took to settle after the load (in use 0, nothing open), ms. */
  settledMs: number;
  /** When the fault began and ended (performance.now()). */
  faultStartedAt: number;
  faultEndedAt: number;
}

export interface ChaosScenario {
  name: string;
  /** The pool reaches the server directly, or through a TcpProxy (`ctx.proxy`). */
  via: 'direct' | 'proxy';
  config?: Partial<PostgresConfig>;
  /** The steady load that runs before, during and after the fault. */
  load: Omit<LedgerLoadOptions, 'name' | 'stopped'>;
  /** The steady load runs this long before the fault starts, ms; default 500. */
  warmUpMs?: number;
  /** ...and this long after it ended, ms; default 800. */
  afterMs?: number;
  /** Run on the scenario's database before the pool opens (e.g. `alter database ... set`). */
  prepare?: (adminUrl: string, database: string) => Promise<void>;
  /** Injects the fault; resolves when it is over (the network healed, the server back). */
  fault: (ctx: ChaosContext) => Promise<void>;
}

const RETRY_REASONS: readonly RetryReason[] = [
  'serialization',
  'deadlock',
  'connection',
  'commit_aborted',
  'commit_unknown',
  'failover',
];

/**
 * Runs one chaos scenario against its own database on `ds`: creates the transfer ledger,
 * opens a pool (direct or through a proxy), runs the steady load around the fault, then waits
 * (bounded) for the pool to give back every connection and the server to hold no open
 * transaction, and audits the ledger. Findings only: the caller asserts.
 */
export async function runChaosScenario(
  ds: DedicatedServer,
  index: number,
  scenario: ChaosScenario,
): Promise<ChaosFindings> {
  const database = `chaos_${index}`;
  await withPgClient(ds.url(), (admin) => admin.query(`create database ${database}`));
  await createTransferLedger(ds.url(database));
  await scenario.prepare?.(ds.url(), database);
  const log = captureLogger('warn');
  const proxy =
    scenario.via === 'proxy' ? await TcpProxy.start({ host: '127.0.0.1', port: ds.port }) : undefined;
  const pdb = new PostgresDatabase(
    {
      ...postgresConfigFromUrl(new URL(ds.url(database))),
      ...scenario.config,
      ...(proxy ? { host: '127.0.0.1', port: proxy.port } : {}),
    },
    log.logger,
  );
  const ctx: ChaosContext = { ds, database, pdb, proxy, extraLoads: [], notes: [], log };
  try {
    await pdb.connect();
    const retriesBefore = await retriesByReason(pdb);
    let faultStartedAt = Number.POSITIVE_INFINITY;
    let faultEndedAt: number | undefined;
    const afterMs = scenario.afterMs ?? 800;
    const steady = runLedgerLoad(pdb, {
      // Stopped by time (below); the default cap of 2,000 transfers a worker could end a fast
      // machine's steady load before the fault did, and then nothing is acknowledged after it.
      maxPerWorker: 100_000,
      ...scenario.load,
      name: scenario.name,
      stopped: () => faultEndedAt !== undefined && performance.now() >= faultEndedAt + afterMs,
    });
    steady.catch(() => {}); // awaited below, after the fault; must not count as unhandled meanwhile
    await new Promise((resolve) => setTimeout(resolve, scenario.warmUpMs ?? 500));
    faultStartedAt = performance.now();
    try {
      await scenario.fault(ctx);
    } finally {
      faultEndedAt = performance.now();
    }
    const load = await steady;
    const retriesAfter = await retriesByReason(pdb);
    const retries = Object.fromEntries(
      RETRY_REASONS.map((r) => [r, retriesAfter[r] - retriesBefore[r]]),
    ) as Record<RetryReason, number>;
    return await settleAndAudit(ctx, scenario.name, load, retries, faultStartedAt, faultEndedAt);
  } finally {
    await pdb.close();
    await proxy?.close();
  }
}

async function retriesByReason(pdb: PostgresDatabase): Promise<Record<RetryReason, number>> {
  const entries = await Promise.all(
    RETRY_REASONS.map(async (reason) => [reason, await metricValue(pdb.metrics.txRetries, { reason })]),
  );
  return Object.fromEntries(entries) as Record<RetryReason, number>;
}

async function settleAndAudit(
  ctx: ChaosContext,
  scenario: string,
  load: LoadResult,
  retries: Record<RetryReason, number>,
  faultStartedAt: number,
  faultEndedAt: number,
): Promise<ChaosFindings> {
  const { pdb, ds, database } = ctx;
  // Bounded waits, shorter than the server's own idle_in_transaction_session_timeout (so that
  // cannot hide a leak): what is still held or open afterwards is the finding.
  const settleFrom = performance.now();
  await waitFor(() => pdb.getConnectionStats().inUse === 0, 1_000).catch(() => {});
  const inUse = pdb.getConnectionStats().inUse;
  await waitFor(async () => (await idleInTransaction(ds.url(), database)).length === 0, 1_000).catch(
    () => {},
  );
  const leftOpen = await idleInTransaction(ds.url(), database);
  const settledMs = Math.round(performance.now() - settleFrom);
  const audit = await auditLedger(ds.url(database));
  const acked = [...load.acked, ...ctx.extraLoads.flatMap((l) => l.acked)];
  const received = [...load.received, ...ctx.extraLoads.flatMap((l) => l.received)];
  const missing = acked.map((a) => a.id).filter((id) => !audit.ids.has(id));
  const untyped = received.filter((r) => !isProductError(r.error));
  const wrong = failedButWritten(received, audit.ids);
  const lookups = commitLookups(ctx.log.lines);
  const unknown = received.filter((r) => r.error instanceof CommitUnknownError);
  const unknownCommitted = unknown.filter((r) => audit.ids.has(r.transferId)).length;
  const firstAfter = acked.filter((a) => a.at >= faultEndedAt).reduce((m, a) => Math.min(m, a.at), Infinity);
  const retried = Object.entries(retries)
    .filter(([, n]) => n > 0)
    .map(([r, n]) => `${r} ${n}`)
    .join(', ');
  const row: ChaosRow = {
    scenario,
    acknowledged: acked.length,
    ackedButMissing: missing.length,
    typedErrors: received.length - untyped.length,
    untypedErrors: untyped.length,
    recoveryMs: Number.isFinite(firstAfter) ? Math.round(firstAfter - faultEndedAt) : undefined,
    notes: [
      ...ctx.notes,
      `errors: ${tally(received.map((r) => className(r.error)))}`,
      `retries: ${retried || '-'}`,
      ...(unknown.length > 0
        ? [`CommitUnknownError: ${unknownCommitted} of ${unknown.length} had committed`]
        : []),
      ...(lookups.committed + lookups.aborted + lookups.unknown > 0
        ? [
            `COMMIT lookups: committed ${lookups.committed}, aborted ${lookups.aborted}, unknown ${lookups.unknown}`,
          ]
        : []),
      `settled in ${settledMs} ms`,
    ].join('; '),
  };
  if (untyped.length > 0)
    console.log(
      `      ${scenario}: untyped errors: ${tally(untyped.map((r) => `${className(r.error)}: ${messageOf(r.error)} (at ${r.trace.step})`))}`,
    );
  return {
    row,
    load,
    received,
    audit,
    missing,
    untyped,
    failedButWritten: wrong,
    lookups,
    inUse,
    leftOpen,
    retries,
    settledMs,
    faultStartedAt,
    faultEndedAt,
  };
}

/** The summary table, one row per scenario, as Markdown (printed by the suite, kept in docs/failure-modes.md). */
export function formatChaosTable(rows: ChaosRow[]): string {
  const header = [
    'scenario',
    'acknowledged',
    'acked but missing',
    'typed errors',
    'untyped errors',
    'recovery ms',
    'notes',
  ];
  const cells = rows.map((r) => [
    r.scenario,
    String(r.acknowledged),
    String(r.ackedButMissing),
    String(r.typedErrors),
    String(r.untypedErrors),
    r.recoveryMs === undefined ? 'none' : String(r.recoveryMs),
    r.notes,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]): string => `| ${c.map((v, i) => v.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}
