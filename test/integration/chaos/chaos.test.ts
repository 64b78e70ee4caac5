import { expect } from 'chai';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type { TxOptions } from '../../../src/db/database.js';
import {
  formatChaosTable,
  runChaosScenario,
  type ChaosContext,
  type ChaosFindings,
  type ChaosRow,
  type ChaosScenario,
} from '../../support/chaos-scenario.js';
import { startDedicatedServer, type DedicatedServer } from '../../support/embedded-test-server.js';
import { className, runLedgerLoad, startAgain } from '../../support/ledger-load.js';
import { withPgClient } from '../../../src/db/connection/with-pg-client.js';
import { queryOnce } from '../../support/query-once.js';
import type { TcpProxy } from '../../support/tcp-proxy.js';
import { startTerminationStorm } from '../../support/termination-storm.js';

/*
 * The chaos suite (docs/failure-modes.md, "Chaos suite"): a ledger workload (transfers between
 * accounts through withTransaction, each acknowledged one recorded here) runs against a
 * dedicated embedded PostgreSQL while one fault is injected per scenario. After each: every
 * acknowledged transfer is in the ledger exactly once (uuid primary key), the balances agree
 * with the ledger and add up to what was opened, callers got only the data layer's error
 * classes, no caller was told "failed" for a transfer that is in the ledger (CommitUnknownError
 * aside: it says "unknown"), the pool has nothing in use and the server nothing idle in
 * transaction. Fault phases are 1.5-3 s; the whole suite stays well under a minute.
 */

const WORKERS = 6;
/** Small bounds, so that a fault turns into an error in well under a second or two. */
const CONFIG = {
  maxOpenConns: WORKERS,
  maxIdleConns: WORKERS,
  timeout: 1_000,
  statementTimeout: 2_000,
  lockTimeout: 2_000,
  idleInTransactionSessionTimeout: 10_000,
  maxRetries: 2,
  retryDelay: 50,
  maxRetryDelay: 200,
};
const RETRY = { maxAttempts: 8, baseDelayMs: 20, maxDelayMs: 200 };
const TX: TxOptions = { timeoutMs: 2_000, retry: RETRY };

/** Every scenario's invariants, whatever its fault. */
function expectClean(f: ChaosFindings): void {
  const name = f.row.scenario;
  expect(
    f.untyped.map((r) => className(r.error)),
    `${name}: untyped errors reached callers`,
  ).to.deep.equal([]);
  expect(f.missing, `${name}: acknowledged transfers missing from the ledger`).to.deep.equal([]);
  expect(f.audit.mismatches, `${name}: balances that disagree with the ledger`).to.deep.equal([]);
  expect(f.audit.total, `${name}: sum of balances`).to.equal(f.audit.openingTotal);
  expect(
    f.failedButWritten.map((r) => className(r.error)),
    `${name}: callers told of a failure whose transfer is in the ledger`,
  ).to.deep.equal([]);
  expect(f.inUse, `${name}: pool connections in use afterwards`).to.equal(0);
  expect(f.leftOpen, `${name}: backends left 'idle in transaction'`).to.deep.equal([]);
  expect(f.row.recoveryMs, `${name}: no transfer acknowledged after the fault ended`).to.not.equal(undefined);
}

/** Transfers acknowledged between `from` and `to` (performance.now()), per second. */
function rate(f: ChaosFindings, from: number, to: number): number {
  const n = f.load.acked.filter((a) => a.at >= from && a.at < to).length;
  return Math.round((n * 10_000) / Math.max(1, to - from)) / 10;
}

/** The scenario's database URL through its proxy. */
function viaProxy(ctx: ChaosContext): string {
  const url = new URL(ctx.ds.url(ctx.database));
  url.hostname = '127.0.0.1';
  url.port = String(proxyOf(ctx).port);
  return url.toString();
}

function proxyOf(ctx: ChaosContext): TcpProxy {
  if (!ctx.proxy) throw new Error('this scenario needs via: proxy');
  return ctx.proxy;
}

describe('chaos suite: ledger workload under faults (dedicated server)', function () {
  this.timeout(30_000);
  let ds: DedicatedServer;
  const rows: ChaosRow[] = [];
  let index = 0;

  before(async () => {
    ds = await startDedicatedServer();
  });

  after(async () => {
    if (rows.length > 0) console.log(`\n${formatChaosTable(rows)}\n`);
    await ds?.destroy();
  });

  async function run(scenario: ChaosScenario): Promise<ChaosFindings> {
    const findings = await runChaosScenario(ds, ++index, scenario);
    rows.push(findings.row);
    expectClean(findings);
    return findings;
  }

  it('restart under load: the server stops and starts again mid-load', async () => {
    let downMs = 0;
    const f = await run({
      name: 'restart under load',
      via: 'direct',
      config: CONFIG,
      load: { workers: WORKERS, txOptions: TX },
      fault: async (ctx) => {
        const stoppedAt = performance.now();
        await ds.server.stop();
        await delay(300);
        await startAgain(ds.server);
        downMs = Math.round(performance.now() - stoppedAt);
        ctx.notes.push(`down ${downMs} ms`);
      },
    });
    // The restart was felt: transactions retried on new connections, or callers got errors.
    const felt = f.retries.connection + f.retries.failover + f.retries.commit_aborted + f.received.length;
    expect(felt, `retries and errors while the server was down ${downMs} ms`).to.be.above(0);
  });

  it('backend termination storm: pg_terminate_backend every 20-50 ms', async () => {
    let terminated = 0;
    const f = await run({
      name: 'termination storm',
      via: 'direct',
      config: CONFIG,
      load: { workers: WORKERS, txOptions: TX },
      fault: async (ctx) => {
        const storm = await startTerminationStorm(ds.url(), ctx.database);
        await delay(1_500);
        ({ terminated } = await storm.stop());
        ctx.notes.push(`terminated ${terminated}`);
      },
    });
    expect(terminated, 'backends terminated').to.be.above(0);
    expect(f.retries.connection, 'transactions retried on a new connection').to.be.above(0);
  });

  it('blackhole: the network swallows everything for 1.5 s, then heals', async () => {
    const f = await run({
      name: 'blackhole 1.5 s',
      via: 'proxy',
      config: { ...CONFIG, timeout: 500 },
      load: { workers: WORKERS, txOptions: { timeoutMs: 600, retry: { ...RETRY, maxAttempts: 3 } } },
      afterMs: 1_000,
      fault: async (ctx) => {
        const proxy = proxyOf(ctx);
        proxy.setMode('blackhole');
        await delay(1_500);
        proxy.setMode('pass');
      },
    });
    // Nothing answered for 1.5 s: every transfer begun then ended in a typed error, none hung.
    const during = f.received.filter((r) => r.at >= f.faultStartedAt && r.at <= f.faultEndedAt + 600);
    expect(during.length, 'callers that got an error during the partition').to.be.above(0);
  });

  it('added latency: 50 ms each way, everything still correct', async () => {
    const LATENCY_MS = 50;
    let latencyFrom = 0;
    let latencyStatements = 0;
    let delayedChunks = 0;
    let roundTripMs = 0;
    const f = await run({
      name: 'latency 50 ms each way',
      via: 'proxy',
      // Row locks are held ~6 round trips now (of a transfer's 8), and callers queue behind them: lock_timeout 2 s
      // would fail some with StatementTimeoutError (55P03), as configured, not as a fault.
      config: { ...CONFIG, lockTimeout: 10_000 },
      load: { workers: WORKERS, txOptions: { timeoutMs: 10_000, retry: RETRY } },
      warmUpMs: 1_000,
      fault: async (ctx) => {
        const proxy = proxyOf(ctx);
        const statements = proxy.statementsSeen;
        const delayed = proxy.chunksDelayed;
        latencyFrom = performance.now();
        proxy.setMode({ latencyMs: LATENCY_MS });
        // One round trip of our own through the proxy, timed: it crosses the latency both ways.
        roundTripMs = await withPgClient(viaProxy(ctx), async (client) => {
          const t0 = performance.now();
          await client.query('select 1');
          return performance.now() - t0;
        });
        await delay(Math.max(0, 3_000 - (performance.now() - latencyFrom)));
        proxy.setMode('pass');
        latencyStatements = proxy.statementsSeen - statements;
        delayedChunks = proxy.chunksDelayed - delayed;
        ctx.notes.push(`round trip ${Math.round(roundTripMs)} ms, ${delayedChunks} chunks delayed`);
      },
    });
    const latencyAcks = f.load.acked.filter((a) => a.at >= latencyFrom && a.at < f.faultEndedAt).length;
    const statementsPerTransfer = Math.round(latencyStatements / Math.max(1, latencyAcks));
    const before = rate(f, latencyFrom - 1_000, latencyFrom);
    // From 1 s in: by then the transfers begun before the latency have ended (they queue on row locks).
    const during = rate(f, latencyFrom + 1_000, f.faultEndedAt);
    const inside = f.load.acked
      .filter((a) => a.startedAt >= latencyFrom && a.at < f.faultEndedAt)
      .map((a) => a.at - a.startedAt)
      .sort((a, b) => a - b);
    const medianMs = Math.round(inside[inside.length >> 1] ?? 0);
    f.row.notes = `throughput ${before}/s -> ${during}/s, ${statementsPerTransfer} statements sent and ${medianMs} ms (median) a transfer; ${f.row.notes}`;
    // The latency was really there: the proxy held chunks back, and a round trip took both delays.
    // A lower bound only, which load cannot break: the proxy (this process, same clock) forwards
    // a chunk no sooner than LATENCY_MS after it came in, in each direction.
    expect(delayedChunks, 'chunks the proxy held back').to.be.above(0);
    expect(roundTripMs, 'a round trip through the proxy under latency, ms').to.be.at.least(2 * LATENCY_MS);
    expect(during, 'transfers acknowledged under latency, per second').to.be.above(0);
    expect(
      f.received.map((r) => className(r.error)),
      'errors under latency alone',
    ).to.deep.equal([]);
  });

  it('a cut right after COMMIT: the server commits, the client never hears (and the opposite)', async () => {
    let cuts = 0;
    const f = await run({
      name: 'cut right after COMMIT',
      via: 'proxy',
      config: CONFIG,
      load: { workers: WORKERS, txOptions: TX },
      fault: async (ctx) => {
        const proxy = proxyOf(ctx);
        const actedBefore = proxy.commitsActedOn;
        const until = performance.now() + 1_500;
        for (let i = 0; performance.now() < until; i++) {
          // Mostly after the COMMIT went out (committed, reply lost); every third before it (aborted).
          proxy.onNextCommit(i % 3 === 2 ? 'cut-before-forward' : 'cut-after-forward');
          await delay(100);
        }
        cuts = proxy.commitsActedOn - actedBefore;
        ctx.notes.push(`COMMITs cut ${cuts}`);
      },
    });
    expect(cuts, 'COMMITs cut').to.be.above(0);
    // Every cut COMMIT was resolved: committed ones acknowledged, aborted ones retried.
    expect(f.retries.commit_aborted, 'aborted COMMITs retried').to.be.above(0);
    const unknown = f.received.filter((r) => className(r.error) === 'CommitUnknownError');
    expect(f.received.length - unknown.length, 'errors other than CommitUnknownError').to.equal(0);
    // The lookup is always reachable here (the proxy passes new connections, the server is up):
    // every cut COMMIT is resolved by pg_xact_status, none may be left "unknown", and the ones
    // cut after forwarding were found committed (acknowledged, not retried).
    expect(unknown.length, 'CommitUnknownError although the lookup could be made').to.equal(0);
    expect(f.lookups.unknown, 'lookups that found no outcome').to.equal(0);
    expect(f.lookups.committed, 'lost COMMITs looked up and found committed').to.be.above(0);
  });

  it('pool exhaustion: four times more concurrent work than maxOpenConns, short acquire timeout', async () => {
    const f = await run({
      name: 'pool exhaustion',
      via: 'direct',
      config: { ...CONFIG, maxOpenConns: 3, maxIdleConns: 3, timeout: 200 },
      load: { workers: 1, txOptions: TX },
      fault: async (ctx) => {
        const until = performance.now() + 1_500;
        const overload = await runLedgerLoad(ctx.pdb, {
          name: 'pool exhaustion overload',
          // 12 callers, 3 connections each held 150 ms: a caller waits ~450 ms, past the 200 ms timeout.
          workers: 12,
          stopped: () => performance.now() >= until,
          txOptions: TX,
          shape: { holdMs: 150 },
          errorPauseMs: 0,
        });
        ctx.extraLoads.push(overload);
      },
    });
    const exhausted = f.received.filter((r) => className(r.error) === 'PoolExhaustedError');
    expect(exhausted.length, 'PoolExhaustedError received').to.be.above(0);
  });

  it('contention storm on 4 accounts: serializable, unordered locks, deadlocks and serialization failures retried', async () => {
    const f = await run({
      name: 'contention storm, 4 accounts',
      via: 'direct',
      config: CONFIG,
      load: { workers: 1, txOptions: TX },
      // Deadlocks are found after deadlock_timeout (1 s by default): short, so the storm has many.
      prepare: (adminUrl, database) =>
        queryOnce(adminUrl, `alter database ${database} set deadlock_timeout = '20ms'`).then(() => {}),
      fault: async (ctx) => {
        const until = performance.now() + 1_500;
        const storm = await runLedgerLoad(ctx.pdb, {
          name: 'contention storm',
          workers: WORKERS,
          accounts: 4,
          stopped: () => performance.now() >= until,
          txOptions: {
            isolationLevel: 'serializable',
            timeoutMs: 5_000,
            retry: { maxAttempts: 30, baseDelayMs: 5, maxDelayMs: 100 },
          },
          shape: { lockInOrder: false },
        });
        ctx.extraLoads.push(storm);
      },
    });
    expect(
      f.retries.serialization + f.retries.deadlock,
      'serialization failures and deadlocks retried',
    ).to.be.above(0);
  });
});
