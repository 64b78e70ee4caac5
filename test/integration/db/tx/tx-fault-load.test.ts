import { expect } from 'chai';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import pino from 'pino';
import { withPgClient } from '../../../../src/db/connection/with-pg-client.js';
import type { TxOptions } from '../../../../src/db/database.js';
import { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { startDedicatedServer, type DedicatedServer } from '../../../support/embedded-test-server.js';
import {
  className,
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
import { startTerminationStorm } from '../../../support/termination-storm.js';
import { postgresConfigFromUrl } from '../../../support/test-database.js';
import { auditLedger, createTransferLedger } from '../../../support/transfer-ledger.js';

const DATABASE = 'fault_load';
const WORKERS = 8;
const ROUNDS = 2;
/** How long workers run through a termination storm, ms. */
const STORM_MS = 3_000;
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
}

describe('TxManager under fault load (dedicated server)', function () {
  this.timeout(60_000);
  let ds: DedicatedServer;
  let db: PostgresDatabase;

  before(async () => {
    ds = await startDedicatedServer();
    await withPgClient(ds.url(), (admin) => admin.query(`create database ${DATABASE}`));
    await createTransferLedger(ds.url(DATABASE));
    db = new PostgresDatabase(
      {
        ...postgresConfigFromUrl(new URL(ds.url(DATABASE))),
        maxOpenConns: WORKERS,
        maxIdleConns: 2,
        timeout: 3_000,
        maxRetries: 10,
        retryDelay: 50,
        maxRetryDelay: 500,
      },
      pino({ level: 'silent' }),
    );
    await db.connect();
  });

  after(async () => {
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
  ): Promise<PhaseResult> {
    const retriesBefore = await metricValue(db.metrics.txRetries);
    const load = await runLedgerLoad(db, {
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
      retries: (await metricValue(db.metrics.txRetries)) - retriesBefore,
      terminated: 0,
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
    return result;
  }

  it('gives callers only typed errors and loses no acknowledged transfer through termination storms and restarts', async () => {
    const phases: PhaseResult[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      phases.push(await stormPhase(`storm #${round}`));
      phases.push(await restartPhase(`restart #${round}`));
    }

    // Everything is gathered and printed first, so one failing run shows every finding.
    const received = phases.flatMap((p) => p.received);
    const untyped = received.filter((r) => !isProductError(r.error));
    const audit = await auditLedger(ds.url(DATABASE));
    const acked = phases.flatMap((p) => p.acked);
    const missing = acked.filter((id) => !audit.ids.has(id));
    const failedButWritten = received.filter((r) => audit.ids.has(r.transferId));
    await waitFor(() => db.getConnectionStats().inUse === 0, 1_000).catch(() => {});
    const inUse = db.getConnectionStats().inUse;
    const openTx = () => idleInTransaction(ds.url(), DATABASE);
    await waitFor(async () => (await openTx()).length === 0, 2_000).catch(() => {});
    const leftOpen = await openTx();

    for (const p of phases) {
      const faults = p.name.startsWith('storm')
        ? `terminated ${p.terminated}`
        : `acked after restart ${p.ackedAfterRestart}`;
      console.log(
        `      ${p.name.padEnd(10)} acknowledged ${String(p.acked.length).padStart(5)} | retries ${String(p.retries).padStart(4)} | ${faults} | errors: ${tally(p.received.map((r) => className(r.error)))}`,
      );
    }
    const untypedSummary = tally(
      untyped.map((r) => `[${r.phase}] ${className(r.error)}: ${messageOf(r.error)} (at ${r.trace.step})`),
    );
    console.log(
      `      untyped ${untyped.length} | acknowledged ${acked.length}, missing ${missing.length} | balance mismatches ${audit.mismatches.length} | in use ${inUse} | idle in transaction ${leftOpen.length} | errors whose transfer is in the ledger: ${tally(failedButWritten.map((r) => className(r.error)))}`,
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

    // (3) The faults were real and the manager retried through them; every phase got work done.
    expect(await metricValue(db.metrics.txRetries), 'db_transaction_retries_total').to.be.above(0);
    for (const p of phases) {
      expect(p.acked.length, `${p.name}: acknowledged transfers`).to.be.above(0);
      if (p.name.startsWith('storm')) expect(p.terminated, `${p.name}: backends terminated`).to.be.above(0);
      else expect(p.ackedAfterRestart, `${p.name}: acknowledged after the restart`).to.be.above(0);
    }

    // (4) Nothing is left checked out or open on the server.
    expect(inUse, 'pool connections in use after the load').to.equal(0);
    expect(leftOpen, "backends left 'idle in transaction'").to.deep.equal([]);
  });
});
