import { expect } from 'chai';
import pino from 'pino';
import { TransactionTimeoutError } from '../../../../src/db/errors/errors.js';
import { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { TxManager } from '../../../../src/db/tx/tx-manager.js';
import { Metrics } from '../../../../src/observability/metrics.js';
import { metricValue } from '../../../support/metric-value.js';
import { useTestDatabase } from '../../../support/test-database.js';

/** Blocks the event loop for `ms`: the deadline's timer cannot fire meanwhile (a loaded process). */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/*
 * A failure that reaches the caller after its deadline is told as the deadline
 * (TransactionTimeoutError, the failure as cause): under load the deadline's timer fires late,
 * and a lost COMMIT's lookup or a last attempt could end past it with another error
 * (docs/failure-modes.md, "Patroni").
 */
describe('TxManager: an error past the deadline reaches the caller as TransactionTimeoutError', () => {
  const db = useTestDatabase();
  let pdb: PostgresDatabase;

  before(() => {
    pdb = new PostgresDatabase(db().config({ maxOpenConns: 2 }), pino({ level: 'silent' }));
  });

  after(async () => {
    expect(pdb.getConnectionStats().inUse).to.equal(0);
    await pdb.close();
  });

  it('turns an error thrown past the deadline (before its timer could fire) into TransactionTimeoutError', async () => {
    const metrics = new Metrics();
    const tm = new TxManager(pdb, pino({ level: 'silent' }), { metrics });
    const boom = new Error('boom');
    const err = await tm
      .withTransaction(
        async (trx) => {
          await trx.raw('select 1');
          busy(300);
          throw boom;
        },
        { timeoutMs: 200 },
      )
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(TransactionTimeoutError);
    expect((err as TransactionTimeoutError).timeoutMs).to.equal(200);
    expect((err as Error).cause).to.equal(boom);
    expect(await metricValue(metrics.txEnded, { outcome: 'timeout' })).to.equal(1);
  });

  it('leaves an error thrown before the deadline as it is', async () => {
    const tm = new TxManager(pdb, pino({ level: 'silent' }));
    const boom = new Error('boom');
    const err = await tm
      .withTransaction(
        async (trx) => {
          await trx.raw('select 1');
          throw boom;
        },
        { timeoutMs: 5_000 },
      )
      .catch((e: unknown) => e);
    expect(err).to.equal(boom);
  });
});
