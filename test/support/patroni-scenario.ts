import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type { PostgresConfig } from '../../src/config/app-config.js';
import { parseDatabaseUrl } from '../../src/config/parse-database-url.js';
import { withPgClient } from '../../src/db/connection/with-pg-client.js';
import type { Knex } from 'knex';
import type { Database, TxOptions } from '../../src/db/database.js';
import { DEFAULTS } from '../../src/config/defaults.js';
import { PostgresDatabase } from '../../src/db/postgres-database.js';
import pino from 'pino';
import { className, isProductError, runLedgerLoad, tally, type LoadResult } from './ledger-load.js';
import type { PatroniCluster } from './patroni-cluster.js';
import { postgresConfigFromUrl } from './test-database.js';
import { auditLedger, createTransferLedger, type LedgerAudit } from './transfer-ledger.js';

/** The application's role in each scenario's database: owner of its tables, no other privilege. */
const APP_ROLE = 'ledger_app';
const APP_PASSWORD = 'ledger-app-secret';

const WORKERS = 8;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** The callers' deadline and retries, as the issue measured them. */
export const TX: TxOptions = {
  timeoutMs: 3_000,
  retry: { maxAttempts: 5, baseDelayMs: 20, maxDelayMs: 200 },
};

/** How a scenario's clients reach the leader. */
export type Access = 'multi-host' | 'haproxy';

/** What one scenario measured, and what its invariants are checked on. */
export interface ScenarioFindings {
  name: string;
  load: LoadResult;
  audit: LedgerAudit;
  /** Acknowledged transfers that are not in the ledger, with what their lost-COMMIT lookups answered (none: COMMIT was answered). */
  missing: Array<{ id: string; at: number; lookups: unknown[] }>;
  /** Errors callers got that are not the data layer's classes. */
  untyped: unknown[];
  /** Pool connections in use once the load stopped. */
  inUse: number;
  /** Longest time between two acknowledged transfers in the run, ms. */
  writeGapMs: number;
  /** When the fault was injected and when the first transfer begun after it was acknowledged (performance.now()). */
  faultAt: number;
  firstAckAfterFault: number | undefined;
  /** What the lost-COMMIT lookups answered, in order. */
  lookups: unknown[];
  /** One line for the log: the numbers the docs quote. */
  summary: string;
}

let databases = 0;

/** A fresh database on the leader, owned by the app role, with the transfer ledger in it. */
export async function freshLedger(cluster: PatroniCluster): Promise<string> {
  const name = `ledger_${++databases}_${process.pid}`;
  const leader = await cluster.leader();
  await withPgClient(cluster.url(leader.hostPort), async (c) => {
    const { rows } = await c.query('select 1 from pg_roles where rolname = $1', [APP_ROLE]);
    if (rows.length === 0) await c.query(`create role ${APP_ROLE} login password '${APP_PASSWORD}'`);
    await c.query(`create database ${name} owner ${APP_ROLE}`);
  });
  await createTransferLedger(appUrl(leader.hostPort, name));
  return name;
}

function appUrl(hosts: string, database: string, query = ''): string {
  return `postgres://${APP_ROLE}:${APP_PASSWORD}@${hosts}/${database}${query}`;
}

/**
 * The layer's configuration for `database`: through a multi-host DATABASE_URL
 * (`target_session_attrs=read-write`, parsed by the config loader's own parser) or through
 * HAProxy's port. `extra` adds keys (replicas).
 */
export function layerConfig(
  cluster: PatroniCluster,
  access: Access,
  database: string,
  extra: Partial<PostgresConfig> = {},
): PostgresConfig {
  const hosts =
    access === 'haproxy'
      ? `127.0.0.1:${cluster.haproxyPort}`
      : cluster.nodes.map((n) => n.hostPort).join(',');
  const issues: string[] = [];
  const parsed = parseDatabaseUrl(
    appUrl(hosts, database, '?target_session_attrs=read-write'),
    'DATABASE_URL',
    issues,
  );
  if (issues.length > 0) throw new Error(issues.join('; '));
  const fromUrl = (parsed.values.database as { postgres: Partial<PostgresConfig> }).postgres;
  const first = cluster.nodes[0]!.hostPort;
  return {
    ...postgresConfigFromUrl(new URL(appUrl(access === 'haproxy' ? hosts : first, database))),
    ...fromUrl,
    maxOpenConns: WORKERS,
    maxIdleConns: WORKERS,
    timeout: 3_000,
    maxRetries: 2,
    retryDelay: 50,
    maxRetryDelay: 200,
    ...extra,
  };
}

/**
 * Runs the ledger workload (WORKERS callers moving money through `withTransaction`) on a
 * fresh database while `fault` acts on the cluster: 1 s of load first, the fault, then load
 * until writes have resumed for 1.5 s. Returns what the invariants are checked on, audited on
 * the leader at the end.
 */
export async function runPatroniScenario(
  cluster: PatroniCluster,
  opts: { name: string; access: Access; fault: () => Promise<void>; resumeWithinMs?: number },
): Promise<ScenarioFindings> {
  const database = await freshLedger(cluster);
  // Each transfer's lost-COMMIT lookups, by transfer id: the lookup's log line and the ledger
  // insert run in the async context of the withTransaction call that made them.
  const calls = new AsyncLocalStorage<{ id?: string; outcomes: unknown[] }>();
  const lookedUp = new Map<string, unknown[]>();
  const lines: Array<{ msg: string; outcome?: unknown }> = [];
  const logger = pino(
    { level: 'info' },
    {
      write: (line: string) => {
        const parsed = JSON.parse(line) as { msg: string; outcome?: unknown };
        lines.push(parsed);
        if (parsed.msg.startsWith('connection lost during COMMIT'))
          calls.getStore()?.outcomes.push(parsed.outcome);
      },
    },
  );
  // Behind HAProxy the one address moves to the new leader: as docs/configuration.md says for
  // such a setup, lost COMMITs are resolved across the failover (several hosts imply it).
  const pdb = new PostgresDatabase(layerConfig(cluster, opts.access, database), logger, {
    transactions: { ...DEFAULTS.database.transactions, resolveAcrossFailover: opts.access === 'haproxy' },
  });
  pdb.driver().on('query', (q: { sql: string; bindings?: unknown[] }) => {
    const call = calls.getStore();
    if (call && q.sql.startsWith('insert into "ledger"'))
      call.id = q.bindings?.find((b): b is string => typeof b === 'string' && UUID.test(b));
  });
  let stopped = false;
  // The load's result arrives at its end; acknowledgements are watched as they happen through this.
  const progress: Array<{ startedAt: number; at: number }> = [];
  const watched = {
    withTransaction: async <T>(fn: (trx: Knex.Transaction) => Promise<T>, o?: TxOptions): Promise<T> => {
      const startedAt = performance.now();
      const call = { outcomes: [] as unknown[] } as { id?: string; outcomes: unknown[] };
      try {
        const result = await calls.run(call, () => pdb.withTransaction(fn, o));
        progress.push({ startedAt, at: performance.now() });
        return result;
      } finally {
        if (call.id !== undefined) lookedUp.set(call.id, call.outcomes);
      }
    },
  } as unknown as Database;
  const loading = runLedgerLoad(watched, {
    name: opts.name,
    workers: WORKERS,
    stopped: () => stopped,
    txOptions: TX,
    maxPerWorker: 100_000,
  });
  try {
    await delay(1_000);
    const faultAt = performance.now();
    await opts.fault();
    const faultEnd = performance.now();
    const until = performance.now() + (opts.resumeWithinMs ?? 60_000);
    const load = await Promise.race([
      (async () => {
        // Writes resumed: a transfer begun after the fault was acknowledged; then 1.5 s more.
        while (performance.now() < until) {
          if (firstAckAfter(progress, faultEnd) !== undefined) break;
          await delay(50);
        }
        await delay(1_500);
        stopped = true;
        return loading;
      })(),
      loading,
    ]);
    return await findings(cluster, opts.name, database, pdb, load, faultAt, lines, lookedUp);
  } finally {
    stopped = true;
    await loading.catch(() => undefined);
    await pdb.close();
  }
}

function firstAckAfter(
  acked: ReadonlyArray<{ startedAt: number; at: number }>,
  at: number,
): number | undefined {
  let first: number | undefined;
  for (const a of acked) if (a.startedAt > at && (first === undefined || a.at < first)) first = a.at;
  return first;
}

async function findings(
  cluster: PatroniCluster,
  name: string,
  database: string,
  pdb: PostgresDatabase,
  load: LoadResult,
  faultAt: number,
  lines: Array<{ msg: string; outcome?: unknown }>,
  lookedUp: ReadonlyMap<string, unknown[]>,
): Promise<ScenarioFindings> {
  const inUse = pdb.getConnectionStats().inUse;
  const leader = await cluster.leader();
  const audit = await auditLedger(cluster.url(leader.hostPort, database));
  const missing = load.acked
    .filter((a) => !audit.ids.has(a.id))
    .map((a) => ({ id: a.id, at: a.at, lookups: lookedUp.get(a.id) ?? [] }));
  const untyped = load.received.filter((r) => !isProductError(r.error)).map((r) => r.error);
  const times = load.acked.map((a) => a.at).sort((x, y) => x - y);
  let writeGapMs = 0;
  for (let i = 1; i < times.length; i++) writeGapMs = Math.max(writeGapMs, times[i]! - times[i - 1]!);
  const lookups = lines
    .filter((l) => l.msg.startsWith('connection lost during COMMIT'))
    .map((l) => l.outcome);
  const firstAckAfterFault = firstAckAfter(load.acked, faultAt);
  const summary =
    `${name}: ${load.acked.length} acknowledged, ${load.received.length} failed callers ` +
    `(${tally(load.received.map((r) => className(r.error)))}), write gap ${Math.round(writeGapMs)} ms, ` +
    `acknowledged-but-missing ${missing.length}, untyped ${untyped.length}, lookups ${tally(lookups.map(String))}, ` +
    `balances ${audit.mismatches.length === 0 && audit.total === audit.openingTotal ? '= ledger' : 'MISMATCH'}, in use ${inUse}`;
  return {
    name,
    load,
    audit,
    missing,
    untyped,
    inUse,
    writeGapMs,
    faultAt,
    firstAckAfterFault,
    lookups,
    summary,
  };
}
