import { expect } from 'chai';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { withPgClient } from '../../../../src/db/connection/with-pg-client.js';
import type { TxOptions } from '../../../../src/db/database.js';
import { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { captureLogger, type CapturedLogger } from '../../../support/capture-logger.js';
import { startDedicatedServer, type DedicatedServer } from '../../../support/embedded-test-server.js';
import {
  className,
  commitLookups,
  failedButWritten as wrongAnswers,
  type CommitLookups,
  idleInTransaction,
  isProductError,
  messageOf,
  runLedgerLoad,
  startAgain,
  tally,
  type Received as LoadReceived,
} from '../../../support/ledger-load.js';
import { metricValue } from '../../../support/metric-value.js';
import { waitFor } from '../../../support/postgres-database-helpers.js';
import { queryOnce } from '../../../support/query-once.js';
import { TcpProxy } from '../../../support/tcp-proxy.js';
import { startTerminationStorm } from '../../../support/termination-storm.js';
import { postgresConfigFromUrl } from '../../../support/test-database.js';
import { auditLedger, createTransferLedger } from '../../../support/transfer-ledger.js';

const DATABASE = 'fault_load';
const WORKERS = 8;
const ROUNDS = 2;
/** How long workers run through a termination storm, ms. */
const STORM_MS = 3_000;
/** How long workers run while the proxy cuts COMMITs, ms. */
const CUT_MS = 1_500;
/** Workers run this long before the restart begins and again after the server is back, ms. */
const BEFORE_RESTART_MS = 500;
const AFTER_RESTART_MS = 1_500;
/** The server stays down this long between stop and start, ms. */
const DOWN_MS = 300;
/** Bounds on each worker's loop, whatever the clock says. */
const MAX_TRANSFERS_PER_WORKER = 2_000;
/** A phase whose workers have not all returned this long after their stop time fails. */
const STRAGGLER_MS = 10_000;
const TX_OPTIONS: TxOptions = { retry: { maxAttempts: 8, baseDelayMs: 20, maxDelayMs: 500 } };

/** An error a caller received, with the phase it was received in. */
interface Received extends LoadReceived {
  phase: string;
}

/** What one phase's callers saw. */
interface PhaseResult {
  name: string;
  acked: string[];
  /** Acknowledged after the server was back (restart phases only). */
  ackedAfterRestart: number;
  received: Received[];
  retries: number;
  terminated: number;
  /** Restart phases: the server's start time before and after (pg_postmaster_start_time); a restart changes it. */
  startedBefore?: string;
  startedAfter?: string;
  /** Cut phases: COMMITs the proxy cut. */
  cuts: number;
  /** Lost COMMITs looked up with pg_xact_status during the phase, by outcome. */
  lookups: CommitLookups;
}

/** When the server's postmaster started: a restart changes it. */
async function postmasterStart(url: string): Promise<string> {
  const { rows } = await queryOnce<{ t: string }>(url, 'select pg_postmaster_start_time()::text as t');
  return rows[0]!.t;
}

describe('TxManager under fault load (dedicated server)', function () {
  this.timeout(60_000);
  let ds: DedicatedServer;
  let db: PostgresDatabase;
  /** A second pool on the same database, through a proxy that cuts COMMITs (cut phases only). */
  let viaProxy: PostgresDatabase;
  let proxy: TcpProxy;
  let log: CapturedLogger;

  before(async () => {
    ds = await startDedicatedServer();
    await withPgClient(ds.url(), (admin) => admin.query(`create database ${DATABASE}`));
    await createTransferLedger(ds.url(DATABASE));
    log = captureLogger('warn');
    const config = {
      ...postgresConfigFromUrl(new URL(ds.url(DATABASE))),
      maxOpenConns: WORKERS,
      maxIdleConns: 2,
      timeout: 3_000,
      maxRetries: 10,
      retryDelay: 50,
      maxRetryDelay: 500,
    };
    db = new PostgresDatabase(config, log.logger);
    await db.connect();
    proxy = await TcpProxy.start({ host: '127.0.0.1', port: ds.port });
    viaProxy = new PostgresDatabase({ ...config, host: '127.0.0.1', port: proxy.port }, log.logger);
    await viaProxy.connect();
  });

  after(async () => {
    await viaProxy?.close();
    await proxy?.close();
    await db?.close();
    await ds?.destroy();
  });

  /**
   * Runs WORKERS loops of transfers until `stopped()` (each bounded by MAX_TRANSFERS_PER_WORKER),
   * recording every acknowledged id and every error a caller received, and the retries counted
   * meanwhile. Fails when a worker is still inside withTransaction STRAGGLER_MS after the stop.
   * `backSince()` is when the server came back (restart phases), on the performance.now() clock.
   */
  async function runPhase(
    name: string,
    stopped: () => boolean,
    backSince: () => number | undefined = () => undefined,
    target: PostgresDatabase = db,
  ): Promise<PhaseResult> {
    const retriesBefore = await metricValue(target.metrics.txRetries);
    const linesBefore = log.lines.length;
    const load = await runLedgerLoad(target, {
      name,
      workers: WORKERS,
      stopped,
      txOptions: TX_OPTIONS,
      maxPerWorker: MAX_TRANSFERS_PER_WORKER,
      stragglerMs: STRAGGLER_MS,
    });
    const back = backSince();
    return {
      name,
      acked: load.acked.map((a) => a.id),
      ackedAfterRestart: back === undefined ? 0 : load.acked.filter((a) => a.at >= back).length,
      received: load.received.map((r) => ({ ...r, phase: name })),
      retries: (await metricValue(target.metrics.txRetries)) - retriesBefore,
      terminated: 0,
      cuts: 0,
      lookups: commitLookups(log.lines.slice(linesBefore)),
    };
  }

  /** Workers run through STORM_MS of pg_terminate_backend every 20-50 ms. */
  async function stormPhase(name: string): Promise<PhaseResult> {
    const storm = await startTerminationStorm(ds.url(), DATABASE);
    const until = Date.now() + STORM_MS;
    try {
      const result = await runPhase(name, () => Date.now() >= until);
      return { ...result, terminated: (await storm.stop()).terminated };
    } finally {
      await storm.stop();
    }
  }

  /** Workers run while the server stops, stays down DOWN_MS and starts again on its port. */
  async function restartPhase(name: string): Promise<PhaseResult> {
    const startedBefore = await postmasterStart(ds.url());
    const hardStop = performance.now() + BEFORE_RESTART_MS + STRAGGLER_MS;
    let backAt: number | undefined;
    const restart = (async () => {
      await delay(BEFORE_RESTART_MS);
      await ds.server.stop();
      await delay(DOWN_MS);
      await startAgain(ds.server);
      backAt = performance.now();
    })();
    restart.catch(() => {}); // awaited below; a failed start must not also count as unhandled
    const result = await runPhase(
      name,
      // Bounded even when the start fails or hangs: the restart's own error is reported below.
      () =>
        (backAt !== undefined && performance.now() >= backAt + AFTER_RESTART_MS) ||
        performance.now() > hardStop,
      () => backAt,
    );
    await restart;
    return { ...result, startedBefore, startedAfter: await postmasterStart(ds.url()) };
  }

  /**
   * Workers run (through the proxy) for CUT_MS while the proxy cuts a COMMIT every 100 ms:
   * two of three right after forwarding it (the server commits, the client never hears), one
   * before (the server aborts). The lookup is always reachable: every cut must be resolved.
   */
  async function cutPhase(name: string): Promise<PhaseResult> {
    const actedBefore = proxy.commitsActedOn;
    const until = performance.now() + CUT_MS;
    const cutting = (async () => {
      for (let i = 0; performance.now() < until; i++) {
        proxy.onNextCommit(i % 3 === 2 ? 'cut-before-forward' : 'cut-after-forward');
        await delay(100);
      }
    })();
    const result = await runPhase(name, () => performance.now() >= until, undefined, viaProxy);
    await cutting;
    return { ...result, cuts: proxy.commitsActedOn - actedBefore };
  }

  it('gives callers only typed errors and loses no acknowledged transfer through termination storms, restarts and cut COMMITs', async () => {
    const phases: PhaseResult[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      phases.push(await stormPhase(`storm #${round}`));
      phases.push(await restartPhase(`restart #${round}`));
      phases.push(await cutPhase(`cut #${round}`));
    }

    // Everything is gathered and printed first, so one failing run shows every finding.
    const received = phases.flatMap((p) => p.received);
    const untyped = received.filter((r) => !isProductError(r.error));
    const audit = await auditLedger(ds.url(DATABASE));
    const acked = phases.flatMap((p) => p.acked);
    const missing = acked.filter((id) => !audit.ids.has(id));
    // Told "failed" although the transfer is in the ledger: a wrong answer, whatever the error,
    // except CommitUnknownError, which says the outcome is unknown (see wrongAnswers).
    const failedButWritten = wrongAnswers(received, audit.ids);
    const unknown = received.filter((r) => className(r.error) === 'CommitUnknownError');
    const unknownWritten = unknown.filter((r) => audit.ids.has(r.transferId)).length;
    const lookups = commitLookups(log.lines);
    await waitFor(() => db.getConnectionStats().inUse === 0, 1_000).catch(() => {});
    const inUse = db.getConnectionStats().inUse;
    const openTx = () => idleInTransaction(ds.url(), DATABASE);
    await waitFor(async () => (await openTx()).length === 0, 2_000).catch(() => {});
    const leftOpen = await openTx();

    for (const p of phases) {
      const faults = p.name.startsWith('storm')
        ? `terminated ${p.terminated}`
        : p.name.startsWith('restart')
          ? `acked after restart ${p.ackedAfterRestart}, server started ${p.startedBefore} -> ${p.startedAfter}`
          : `COMMITs cut ${p.cuts}`;
      const { committed, aborted, unknown: notFound } = p.lookups;
      console.log(
        `      ${p.name.padEnd(10)} acknowledged ${String(p.acked.length).padStart(5)} | retries ${String(p.retries).padStart(4)} | ${faults} | errors: ${tally(p.received.map((r) => className(r.error)))} | lookups: committed ${committed}, aborted ${aborted}, unknown ${notFound}`,
      );
    }
    const untypedSummary = tally(
      untyped.map((r) => `[${r.phase}] ${className(r.error)}: ${messageOf(r.error)} (at ${r.trace.step})`),
    );
    console.log(
      `      untyped ${untyped.length} | acknowledged ${acked.length}, missing ${missing.length} | balance mismatches ${audit.mismatches.length} | in use ${inUse} | idle in transaction ${leftOpen.length} | told failed but in the ledger: ${tally(failedButWritten.map((r) => className(r.error)))} | CommitUnknownError ${unknown.length} (${unknownWritten} in the ledger) | COMMIT lookups: committed ${lookups.committed}, aborted ${lookups.aborted}, unknown ${lookups.unknown}`,
    );
    if (untyped.length > 0) {
      console.log(`      untyped errors: ${untypedSummary}`);
      console.log(
        `      untyped errors by attempt: ${tally(untyped.map((r) => `attempt ${r.trace.attempts}`))}`,
      );
      const stack = (untyped[0]!.error as Error).stack ?? '(none)';
      // knex's own frames say little; ours say where the error passed through untyped.
      const ours = stack.split('\n').filter((line, i) => i === 0 || line.includes('/src/'));
      console.log(`      first untyped stack (src frames): ${ours.join('\n')}`);
    }

    // (1) Every error a caller received is one of ours or objection's.
    expect(untyped, `untyped errors reached callers: ${untypedSummary}`).to.have.length(0);

    // (2) Every acknowledged transfer is in the ledger and the balances agree with it.
    expect(
      missing,
      `${missing.length} of ${acked.length} acknowledged transfers are not in the ledger`,
    ).to.have.length(0);
    expect(audit.mismatches, 'balances that disagree with the ledger').to.deep.equal([]);

    // (2b) No caller was told its transfer failed while it is in the ledger (a lost COMMIT found
    // committed must be acknowledged, never re-run into a duplicate or reported aborted);
    // CommitUnknownError alone may have either outcome.
    expect(
      failedButWritten.map((r) => `[${r.phase}] ${className(r.error)} (at ${r.trace.step})`),
      'callers told of a failure whose transfer is in the ledger',
    ).to.deep.equal([]);

    // (3) The faults were real and the manager retried through them; every phase got work done.
    expect(await metricValue(db.metrics.txRetries), 'db_transaction_retries_total').to.be.above(0);
    for (const p of phases) {
      expect(p.acked.length, `${p.name}: acknowledged transfers`).to.be.above(0);
      // Each phase's fault was felt by its callers: transactions retried, or callers got errors.
      expect(p.retries + p.received.length, `${p.name}: retries and errors`).to.be.above(0);
      if (p.name.startsWith('storm')) expect(p.terminated, `${p.name}: backends terminated`).to.be.above(0);
      else if (p.name.startsWith('restart')) {
        expect(p.startedAfter, `${p.name}: the server's start time (it restarted)`).to.not.equal(
          p.startedBefore,
        );
        expect(p.ackedAfterRestart, `${p.name}: acknowledged after the restart`).to.be.above(0);
      } else {
        // Nothing stops the lookup here (server up, proxy passing new connections): every cut
        // COMMIT is resolved, and those cut after forwarding were found committed.
        expect(p.cuts, `${p.name}: COMMITs cut`).to.be.above(0);
        expect(p.lookups.committed, `${p.name}: lost COMMITs found committed`).to.be.above(0);
        expect(p.lookups.unknown, `${p.name}: lookups that found no outcome`).to.equal(0);
        expect(
          p.received.map((r) => className(r.error)),
          `${p.name}: errors (every cut COMMIT is resolvable)`,
        ).to.deep.equal([]);
      }
    }

    // (4) Nothing is left checked out or open on the server.
    expect(inUse, 'pool connections in use after the load').to.equal(0);
    expect(leftOpen, "backends left 'idle in transaction'").to.deep.equal([]);
  });
});
