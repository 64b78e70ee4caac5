import { expect } from 'chai';
import type { Knex } from 'knex';
import { loadConfig } from '../../../../src/config/index.js';
import { SerializationError } from '../../../../src/db/errors/errors.js';
import { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { TxManager } from '../../../../src/db/tx/tx-manager.js';
import { captureLogger, ERROR, WARN } from '../../../support/capture-logger.js';
import { metricValue } from '../../../support/metric-value.js';
import { useTestDatabase } from '../../../support/test-database.js';

// The built-in retry budget (database.transactions.retryBudget) against real serialization
// failures: once its tokens are spent, the first 40001 goes straight to the caller.
describe('TxManager retry budget (real PostgreSQL)', () => {
  const db = useTestDatabase();
  let pdb: PostgresDatabase;
  let knex: Knex;

  before(async () => {
    pdb = new PostgresDatabase(db().config({ maxOpenConns: 6 }), captureLogger('fatal').logger);
    knex = pdb.driver();
    await knex.raw('create table budget_dots (k int not null)');
  });

  after(async () => {
    await pdb.close();
  });

  /**
   * One real serialization failure (40001) at `trx`'s COMMIT: a concurrent serializable
   * transaction reads what `trx` writes, writes what it reads, and commits first.
   */
  async function writeSkewAgainst(trx: Knex.Transaction): Promise<void> {
    const other = await knex.transaction(null, { isolationLevel: 'serializable' });
    await other.raw('select count(*) from budget_dots where k = 1');
    await trx.raw('select count(*) from budget_dots where k = 2');
    await other.raw('insert into budget_dots values (2)');
    await trx.raw('insert into budget_dots values (1)');
    await other.commit();
  }

  /** A serializable transaction that meets a 40001 on every attempt; resolves with its attempts and error. */
  function alwaysConflicting(tm: TxManager): Promise<{ calls: number; error: unknown }> {
    let calls = 0;
    return tm
      .withTransaction(
        async (trx) => {
          calls++;
          await writeSkewAgainst(trx);
        },
        { isolationLevel: 'serializable', retry: { maxAttempts: 5, baseDelayMs: 1, maxDelayMs: 2 } },
      )
      .then(
        () => ({ calls, error: undefined as unknown }),
        (error: unknown) => ({ calls, error }),
      );
  }

  it('stops retrying once the budget is spent: later transactions get their first 40001 at once', async () => {
    const log = captureLogger();
    const tm = new TxManager(pdb, log.logger, { transactions: { retryBudget: { ratio: 0, burst: 2 } } });
    const first = await alwaysConflicting(tm); // two retries granted, the third vetoed
    const second = await alwaysConflicting(tm); // vetoed at its first failure
    expect([first.calls, second.calls]).to.deep.equal([3, 1]);
    expect(first.error).to.be.instanceOf(SerializationError);
    expect(second.error).to.be.instanceOf(SerializationError);
    expect((second.error as SerializationError).sqlState).to.equal('40001');
    expect(await metricValue(tm.metrics.txRetries, { reason: 'serialization' })).to.equal(2);
    expect(await metricValue(tm.metrics.txRetriesVetoed, { reason: 'serialization' })).to.equal(2);
    expect(await metricValue(tm.metrics.txEnded, { outcome: 'retry_exhausted' })).to.equal(2);
    const exhausted = log.lines.filter((l) => l.level === WARN && /retry budget exhausted/.test(l.msg));
    expect(exhausted).to.have.length(1);
    const vetoed = log.lines.filter((l) => l.level === ERROR && l.retryVetoed === true);
    expect(vetoed).to.have.length(2);
  });

  it('lets every retry through without a budget (a TxManager given none)', async () => {
    const tm = new TxManager(pdb, captureLogger('fatal').logger);
    // The database's counters, shared with every manager built on it: none vetoed by this run.
    expect(tm.metrics).to.equal(pdb.metrics);
    const vetoedBefore = await metricValue(tm.metrics.txRetriesVetoed);
    const run = await alwaysConflicting(tm);
    expect(run.calls).to.equal(5);
    expect(await metricValue(tm.metrics.txRetriesVetoed)).to.equal(vetoedBefore);
  });

  it('is on with the loaded configuration (ratio 0.1, burst 10), as the service runs it', async () => {
    const { transactions } = loadConfig({ env: {}, envFile: false, profile: 'test' }).database;
    expect(transactions.retryBudget).to.deep.equal({ ratio: 0.1, burst: 10 });
    const tm = new TxManager(pdb, captureLogger('fatal').logger, { transactions });
    const runs = [];
    for (let i = 0; i < 4; i++) runs.push(await alwaysConflicting(tm));
    // Two transactions get their 4 retries (8 tokens), then the last 2 tokens go (+ what time refilled).
    expect(runs.map((r) => r.calls).reduce((a, b) => a + b) - runs.length).to.be.within(10, 12);
    expect(await metricValue(tm.metrics.txRetriesVetoed)).to.be.at.least(1);
  });
});
