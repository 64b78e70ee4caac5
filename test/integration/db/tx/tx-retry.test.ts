import { expect } from 'chai';
import type { Knex } from 'knex';
import pino from 'pino';
import { SerializationError, UniqueViolationError } from '../../../../src/db/errors/errors.js';
import { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { TxManager } from '../../../../src/db/tx/tx-manager.js';
import { Metrics } from '../../../../src/observability/metrics.js';
import { captureLogger } from '../../../support/capture-logger.js';
import { metricValue } from '../../../support/metric-value.js';
import { runRealDeadlock } from '../../../support/real-deadlock.js';
import { adminQuery, useTestDatabase } from '../../../support/test-database.js';

describe('TxManager retry (real PostgreSQL)', () => {
  const db = useTestDatabase();
  let pdb: PostgresDatabase;
  let knex: Knex;

  before(async () => {
    pdb = new PostgresDatabase(db().config({ maxOpenConns: 10 }), pino({ level: 'silent' }));
    knex = pdb.driver();
    await knex.raw('create table accounts (id int primary key, balance int not null)');
    await knex.raw('create table locks (id int primary key, v int not null)');
    await knex.raw('create table items (id int primary key)');
    await knex.raw('create table dots (k int not null)');
  });

  after(async () => {
    expect((knex.client as { pool: { numUsed(): number } }).pool.numUsed()).to.equal(0);
    expect(pdb.getConnectionStats().inUse).to.equal(0);
    await pdb.close();
  });

  /** Withdraws 10 if the two accounts together hold at least 10 (write skew without serializable). */
  function withdraw(
    tm: TxManager,
    i: number,
    retry: false | { maxAttempts: number; baseDelayMs: number; maxDelayMs: number },
  ) {
    return tm.withTransaction(
      async (trx) => {
        const { rows } = await trx.raw<{ rows: Array<{ total: number }> }>(
          'select sum(balance)::int as total from accounts',
        );
        const total = rows[0]!.total;
        await trx.raw('select pg_sleep(0.005)');
        if (total < 10) throw new Error('insufficient funds');
        await trx('accounts')
          .where({ id: 1 + (i % 2) })
          .decrement('balance', 10);
        return total;
      },
      { isolationLevel: 'serializable', retry },
    );
  }

  describe('under serializable write skew', () => {
    beforeEach(async () => {
      await knex('accounts').del();
      await knex('accounts').insert([
        { id: 1, balance: 100 },
        { id: 2, balance: 100 },
      ]);
    });

    it('retries 20 concurrent transfers until every one commits, and the balance rule holds', async () => {
      const { logger, lines } = captureLogger();
      const metrics = new Metrics();
      const tm = new TxManager(pdb, logger, { metrics });
      const seen = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          withdraw(tm, i, { maxAttempts: 60, baseDelayMs: 5, maxDelayMs: 100 }),
        ),
      );
      // Each committed transfer saw the effect of every earlier one: a serial history.
      expect([...seen].sort((a, b) => a - b)).to.deep.equal(
        Array.from({ length: 20 }, (_, i) => 10 * (i + 1)),
      );
      const [{ total }] = (
        await knex.raw<{ rows: Array<{ total: number }> }>('select sum(balance)::int as total from accounts')
      ).rows as [{ total: number }];
      expect(total).to.equal(0);
      const retries = await metricValue(metrics.txRetries);
      expect(retries).to.be.greaterThan(0);
      expect(await metricValue(metrics.txRetries, { reason: 'serialization' })).to.equal(retries);
      expect(
        await metricValue(metrics.txEnded, { outcome: 'committed', isolation: 'serializable' }),
      ).to.equal(20);
      const warns = lines.filter((l) => l.msg === 'transaction failed transiently; retrying');
      expect(warns).to.have.length(retries);
      for (const w of warns) {
        expect(w).to.include({
          level: 40,
          reason: 'serialization',
          sqlState: '40001',
          isolation: 'serializable',
        });
        // Retry n of at most 59 waits a full-jitter draw from [0, min(maxDelayMs, baseDelayMs * 2^(n-1))).
        const attempt = w.attempt as number;
        expect(Number.isInteger(attempt) && attempt >= 1 && attempt <= 59, `attempt ${attempt}`).to.equal(
          true,
        );
        expect(Number.isInteger(w.delayMs), `delayMs ${String(w.delayMs)}`).to.equal(true);
        expect(w.delayMs)
          .to.be.at.least(0)
          .and.below(Math.min(100, 5 * 2 ** (attempt - 1)));
        expect(JSON.stringify(w)).not.to.match(/bindings|balance/);
      }
      expect(lines.filter((l) => l.level >= 50)).to.deep.equal([]);
    });

    it('fails some transfers with SerializationError when retry is off, and the rule still holds', async () => {
      const tm = new TxManager(pdb, pino({ level: 'silent' }));
      const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => withdraw(tm, i, false)));
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(failed.length).to.be.greaterThan(0);
      for (const f of failed) {
        expect(f.reason).to.be.instanceOf(SerializationError);
        expect((f.reason as SerializationError).sqlState).to.equal('40001');
      }
      const committed = results.length - failed.length;
      const [{ total }] = (
        await knex.raw<{ rows: Array<{ total: number }> }>('select sum(balance)::int as total from accounts')
      ).rows as [{ total: number }];
      expect(total).to.equal(200 - 10 * committed);
    });
  });

  it('retries a real deadlock and both transactions commit', async () => {
    const metrics = new Metrics();
    const tm = new TxManager(pdb, pino({ level: 'silent' }), { metrics });
    const attempts = await runRealDeadlock(knex, [tm, tm]);
    expect([...attempts].sort()).to.deep.equal([1, 2]);
    expect(await knex('locks').orderBy('id').pluck('v')).to.deep.equal([2, 2]);
    expect(await metricValue(metrics.txRetries, { reason: 'deadlock' })).to.equal(1);
  });

  it('retries a serialization failure raised by COMMIT itself (knex#3370)', async () => {
    await knex('dots').del();
    const metrics = new Metrics();
    const tm = new TxManager(pdb, pino({ level: 'silent' }), { metrics });
    const commitErrors: string[] = [];
    const onError = (err: { code?: string }, q: { sql: string }) => {
      if (/^commit/i.test(q.sql)) commitErrors.push(String(err.code));
    };
    knex.on('query-error', onError);
    try {
      // T1 and T2 each read what the other writes: T2 becomes a pivot and fails at COMMIT.
      const t1 = await knex.transaction(null, { isolationLevel: 'serializable' });
      let calls = 0;
      await tm.withTransaction(
        async (trx) => {
          calls++;
          if (calls === 1) await t1.raw('select count(*) from dots where k = 1');
          await trx.raw('select count(*) from dots where k = 2');
          if (calls === 1) await t1.raw('insert into dots values (2)');
          await trx.raw('insert into dots values (1)');
          if (calls === 1) await t1.commit();
        },
        { isolationLevel: 'serializable' },
      );
      expect(calls).to.equal(2);
      expect(commitErrors).to.deep.equal(['40001']);
      expect(await metricValue(metrics.txRetries, { reason: 'serialization' })).to.equal(1);
      expect(await knex('dots').orderBy('k').pluck('k')).to.deep.equal([1, 2]);
    } finally {
      knex.off('query-error', onError);
    }
  });

  it('retries after pg_terminate_backend kills the connection before COMMIT, and commits exactly once', async () => {
    await knex('items').del();
    const metrics = new Metrics();
    const tm = new TxManager(pdb, pino({ level: 'silent' }), { metrics });
    let calls = 0;
    await tm.withTransaction(async (trx) => {
      calls++;
      await trx('items').insert({ id: 1 });
      if (calls === 1) {
        const { rows } = await trx.raw<{ rows: Array<{ pid: number }> }>('select pg_backend_pid() as pid');
        await adminQuery('select pg_terminate_backend($1, 5000)', [rows[0]!.pid]);
      }
    });
    expect(calls).to.equal(2);
    expect(await knex('items').count({ n: '*' })).to.deep.equal([{ n: '1' }]);
    expect(await metricValue(metrics.txRetries, { reason: 'connection' })).to.equal(1);
  });

  it('runs a unique violation exactly once and rejects with UniqueViolationError', async () => {
    await knex('items').del();
    await knex('items').insert({ id: 7 });
    const metrics = new Metrics();
    const tm = new TxManager(pdb, pino({ level: 'silent' }), { metrics });
    let calls = 0;
    const err = await tm
      .withTransaction(async (trx) => {
        calls++;
        await trx('items').insert({ id: 7 });
      })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(UniqueViolationError);
    expect(calls).to.equal(1);
    expect(await metricValue(metrics.txRetries)).to.equal(0);
    expect(await metricValue(metrics.txEnded, { outcome: 'rolled_back' })).to.equal(1);
  });

  it('gives up after maxAttempts with SerializationError, one warn per retry and one error line', async () => {
    const { logger, lines } = captureLogger();
    const metrics = new Metrics();
    const tm = new TxManager(pdb, logger, {
      metrics,
      transactions: { maxAttempts: 3, baseDelay: 5, maxDelay: 20 },
    });
    let calls = 0;
    const err = await tm
      .withTransaction(async (trx) => {
        calls++;
        await trx.raw(
          `do $$ begin raise exception 'conflict' using errcode = 'serialization_failure'; end $$`,
        );
      })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(SerializationError);
    expect((err as SerializationError).message).to.contain('3 attempts');
    expect(calls).to.equal(3);
    expect(lines.filter((l) => l.level === 40)).to.have.length(2);
    const errors = lines.filter((l) => l.level === 50);
    expect(errors).to.have.length(1);
    expect(errors[0]).to.include({ attempts: 3, reason: 'serialization' });
    expect(await metricValue(metrics.txEnded, { outcome: 'retry_exhausted' })).to.equal(1);
  });
});
