import { expect } from 'chai';
import type { Knex } from 'knex';
import { sqlStateOf } from '../../../../src/db/errors/classify-error.js';
import { ReadOnlyTransactionError } from '../../../../src/db/errors/errors.js';
import { metricValue } from '../../../support/metric-value.js';
import { queryOnce } from '../../../support/query-once.js';
import { adminQuery, useTestDatabase } from '../../../support/test-database.js';
import { useDatabases, waitFor } from '../../../support/postgres-database-helpers.js';

/**
 * pg#2650: after a failover, pooled sessions answer 25006 to a read-write
 * transaction. `alter database ... set default_transaction_read_only` stands in for the
 * demotion: it applies to new sessions only, so sessions opened while it was on stay
 * read-only after it is turned off, like sessions still attached to a demoted primary.
 */
describe('TxManager failover (real PostgreSQL)', () => {
  const db = useTestDatabase();
  const open = useDatabases();
  const retry = { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20 };

  const setReadOnly = (on: boolean) =>
    adminQuery(`alter database ${db().name} set default_transaction_read_only = ${on ? 'on' : 'off'}`);
  /** Rows with `k`, seen from a connection outside the pool under test. */
  const rowsWith = async (k: number) =>
    Number(
      (await queryOnce(db().url, 'select count(*) as n from failover_rows where k = $1', [k])).rows[0]?.n,
    );
  const pidOf = async (trx: Knex.Transaction) =>
    (await trx.raw<{ rows: Array<{ pid: number }> }>('select pg_backend_pid() as pid')).rows[0]!.pid;
  /** How many of `pids` are still server backends. */
  const backendsOf = async (pids: number[]) =>
    (await adminQuery('select pid from pg_stat_activity where pid = any($1::int[])', [pids])).rowCount;

  before(async () => {
    await queryOnce(db().url, 'create table failover_rows (k int not null)');
  });

  afterEach(async () => {
    await setReadOnly(false);
  });

  /** Opens `n` pool connections at once (each busy until all are open) and returns their pids. */
  async function warm(knex: Knex, n: number): Promise<number[]> {
    const rows = await Promise.all(
      Array.from({ length: n }, () =>
        knex.raw<{ rows: Array<{ pid: number; ro: string }> }>(
          "select pg_backend_pid() as pid, current_setting('default_transaction_read_only') as ro, pg_sleep(0.05)",
        ),
      ),
    );
    expect(rows.map((r) => r.rows[0]!.ro)).to.deep.equal(Array<string>(n).fill('on'));
    return rows.map((r) => r.rows[0]!.pid);
  }

  it('evicts stale read-only sessions on a 25006 and commits once on a fresh connection', async () => {
    const { db: pdb, metrics } = open(db().config({ maxOpenConns: 4, maxIdleConns: 4 }));
    const knex = pdb.driver();
    await setReadOnly(true);
    const stale = await warm(knex, 3);
    expect(new Set(stale).size).to.equal(3);
    expect(pdb.getConnectionStats().idle).to.equal(3);
    await setReadOnly(false); // the failover completed: new sessions are writable

    const attempts: number[] = [];
    await pdb.txManager.withTransaction(
      async (trx) => {
        attempts.push(await pidOf(trx));
        await trx('failover_rows').insert({ k: 1 });
      },
      { retry },
    );

    expect(attempts).to.have.length(2);
    expect(stale).to.include(attempts[0]);
    expect(stale).to.not.include(attempts[1]);
    expect(await metricValue(metrics.txRetries, { reason: 'failover' })).to.equal(1);
    expect(await metricValue(metrics.txRetries)).to.equal(1);
    expect(await metricValue(metrics.txEnded, { outcome: 'committed' })).to.equal(1);
    expect(await rowsWith(1)).to.equal(1);
    // The failed connection and the idle ones are closed on the server, not only dropped by the pool.
    await waitFor(async () => (await backendsOf(stale)) === 0);
    const stats = pdb.getConnectionStats();
    expect(stats.inUse).to.equal(0);
    expect(stats.idle).to.equal(1); // the retry's fresh connection
  });

  it('retries on a fresh connection when the callback catches the 25006 and COMMIT answers ROLLBACK', async () => {
    const { db: pdb, metrics } = open(db().config({ maxOpenConns: 4 }));
    await setReadOnly(true);
    const stale = await warm(pdb.driver(), 2);
    await setReadOnly(false);

    const attempts: number[] = [];
    await pdb.txManager.withTransaction(
      async (trx) => {
        attempts.push(await pidOf(trx));
        await trx('failover_rows')
          .insert({ k: 4 })
          .catch(() => {}); // swallowed: the transaction is aborted, COMMIT will say ROLLBACK
      },
      { retry },
    );

    expect(attempts).to.have.length(2);
    expect(stale).to.include(attempts[0]);
    expect(stale).to.not.include(attempts[1]);
    expect(await metricValue(metrics.txRetries, { reason: 'failover' })).to.equal(1);
    expect(await rowsWith(4)).to.equal(1);
    await waitFor(async () => (await backendsOf(stale)) === 0);
  });

  it('rejects with ReadOnlyTransactionError after maxAttempts while every session is read-only', async () => {
    const { db: pdb, metrics } = open(db().config({ maxOpenConns: 4 }));
    await setReadOnly(true);
    await warm(pdb.driver(), 2);

    const attempts: number[] = [];
    const err: unknown = await pdb.txManager
      .withTransaction(
        async (trx) => {
          attempts.push(await pidOf(trx));
          await trx('failover_rows').insert({ k: 2 });
          return 'written';
        },
        { retry },
      )
      .catch((e: unknown) => e);

    expect(err).to.be.instanceOf(ReadOnlyTransactionError);
    const e = err as ReadOnlyTransactionError;
    expect(e.code).to.equal('READ_ONLY_TRANSACTION');
    expect(e.message).to.match(/read-only although a read-write transaction was asked for/);
    expect(e.message).to.match(/SQLSTATE 25006/);
    expect(e.message).to.match(/failover/);
    expect(sqlStateOf(e)).to.equal('25006');
    // Each attempt ran on a connection of its own: the one that failed was never reused.
    expect(attempts).to.have.length(3);
    expect(new Set(attempts).size).to.equal(3);
    expect(await metricValue(metrics.txRetries, { reason: 'failover' })).to.equal(2);
    expect(await metricValue(metrics.txEnded, { outcome: 'retry_exhausted' })).to.equal(1);
    expect(await metricValue(metrics.errors, { class: 'failover' })).to.equal(1);
    expect(pdb.getConnectionStats().inUse).to.equal(0);
    expect(await rowsWith(2)).to.equal(0);
  });

  it('rejects a write in withReadOnlyTransaction at once, without a retry or an eviction', async () => {
    const { db: pdb, metrics } = open(db().config({ maxOpenConns: 4 }));
    const knex = pdb.driver();

    let calls = 0;
    const pids: number[] = [];
    const err: unknown = await pdb.txManager
      .withReadOnlyTransaction(
        async (trx) => {
          calls += 1;
          pids.push(await pidOf(trx));
          await trx('failover_rows').insert({ k: 3 });
        },
        { retry },
      )
      .catch((e: unknown) => e);

    expect(err).to.be.instanceOf(ReadOnlyTransactionError);
    expect((err as Error).message).to.equal('A write was attempted in a read-only transaction.');
    expect(sqlStateOf(err)).to.equal('25006');
    expect(calls).to.equal(1);
    expect(await metricValue(metrics.txRetries)).to.equal(0);
    expect(await metricValue(metrics.txEnded, { outcome: 'rolled_back' })).to.equal(1);
    // The connection went back to the pool healthy (rolled back, not destroyed): it is reused.
    const again = await knex.raw<{ rows: Array<{ pid: number }> }>('select pg_backend_pid() as pid');
    expect(again.rows[0]!.pid).to.equal(pids[0]);
    expect(pdb.getConnectionStats().inUse).to.equal(0);
  });
});
