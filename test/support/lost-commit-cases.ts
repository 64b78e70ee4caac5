import { expect } from 'chai';
import type { PostgresDatabase } from '../../src/db/postgres-database.js';
import { TxManager } from '../../src/db/tx/tx-manager.js';
import { Metrics } from '../../src/observability/metrics.js';
import { captureLogger, type LogLine } from './capture-logger.js';
import { metricValue } from './metric-value.js';
import type { TcpProxy } from './tcp-proxy.js';

/** What the lost-COMMIT lookups logged (pg_xact_status's answers). */
export const lookedUp = (lines: LogLine[]): unknown[] =>
  lines.filter((l) => l.msg.startsWith('connection lost during COMMIT')).map((l) => l.outcome);

/** What the two lost-COMMIT cases need: the database, the proxy that cuts COMMIT, and a row count of `ledger`. */
export interface LostCommitSetup {
  pdb: () => PostgresDatabase;
  proxy: () => TcpProxy;
  rowsWithId: (id: number) => Promise<number>;
}

/**
 * The two cases of a COMMIT whose link is cut, as `it`s on a `ledger (id int primary key, note
 * text)` table where ids 1 and 2 are free: cut after the server got it (pg_xact_status says
 * committed: success, no re-run) and cut before (aborted: re-run once). Shared by the direct
 * suite and the PgBouncer one, which must hold the same guarantee.
 */
export function itResolvesLostCommits(setup: LostCommitSetup, where = ''): void {
  it(`returns success when the server committed before the link was cut${where}, and the row exists once`, async () => {
    const metrics = new Metrics();
    const { logger, lines } = captureLogger();
    const tm = new TxManager(setup.pdb(), logger, { metrics });
    let calls = 0;
    setup.proxy().onNextCommit('cut-after-forward');
    const result = await tm.withTransaction(async (trx) => {
      calls++;
      await trx('ledger').insert({ id: 1, note: 'committed' });
      return 'done';
    });
    expect(result).to.equal('done');
    expect(calls).to.equal(1);
    expect(lookedUp(lines)).to.deep.equal(['committed']);
    expect(await metricValue(metrics.commitLookups)).to.equal(1);
    expect(await metricValue(metrics.commitLookups, { outcome: 'committed' })).to.equal(1);
    expect(await setup.rowsWithId(1)).to.equal(1);
  });

  it(`retries when the server never got COMMIT${where} and aborted, and the row exists once`, async () => {
    const metrics = new Metrics();
    const { logger, lines } = captureLogger();
    const tm = new TxManager(setup.pdb(), logger, { metrics });
    let calls = 0;
    setup.proxy().onNextCommit('cut-before-forward');
    await tm.withTransaction(async (trx) => {
      calls++;
      await trx('ledger').insert({ id: 2, note: 'aborted, then retried' });
    });
    expect(calls).to.equal(2);
    expect(lookedUp(lines)).to.deep.equal(['aborted']);
    expect(await setup.rowsWithId(2)).to.equal(1);
    expect(await metricValue(metrics.txRetries, { reason: 'commit_aborted' })).to.equal(1);
    expect(await metricValue(metrics.commitLookups, { outcome: 'aborted' })).to.equal(1);
  });
}
