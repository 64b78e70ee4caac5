import { expect } from 'chai';
import type { Knex } from 'knex';
import pino from 'pino';
import { SerializationError, TransactionTimeoutError } from '../../../../src/db/errors/errors.js';
import { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import type { TxEndInfo, TxHooks, TxRetryInfo, TxStatementInfo } from '../../../../src/db/tx/tx-hooks.js';
import { TxManager } from '../../../../src/db/tx/tx-manager.js';
import { Metrics } from '../../../../src/observability/metrics.js';
import { captureLogger, ERROR, WARN } from '../../../support/capture-logger.js';
import { metricValue } from '../../../support/metric-value.js';
import { runRealDeadlock } from '../../../support/real-deadlock.js';
import { useTestDatabase } from '../../../support/test-database.js';
import { withoutOrigin } from '../../../support/without-origin.js';

type Event =
  | { hook: 'onStatement'; info: TxStatementInfo }
  | { hook: 'beforeRetry'; info: TxRetryInfo }
  | { hook: 'onEnd'; info: TxEndInfo };

/** Hooks that record every call, in order (statement infos copied: the manager reuses them). */
function recorder(): TxHooks & { events: Event[]; names(): string[] } {
  const events: Event[] = [];
  return {
    events,
    names: () => events.map((e) => e.hook),
    onStatement: (info) => void events.push({ hook: 'onStatement', info: { ...info } }),
    beforeRetry: (info) => void events.push({ hook: 'beforeRetry', info }),
    onEnd: (info) => void events.push({ hook: 'onEnd', info }),
  };
}

/**
 * A process-wide retry budget: at most one retry per `perMs` across every transaction; beyond
 * it, `beforeRetry` vetoes. The clock is injectable so the test decides when a second passed.
 */
class RetryBudget implements TxHooks {
  granted = 0;
  vetoed = 0;
  #nextAt = -Infinity;
  constructor(
    private readonly perMs: number,
    private readonly now: () => number = Date.now,
  ) {}
  beforeRetry = (): boolean => {
    const t = this.now();
    if (t < this.#nextAt) {
      this.vetoed++;
      return false;
    }
    this.#nextAt = t + this.perMs;
    this.granted++;
    return true;
  };
}

describe('TxManager hooks (real PostgreSQL)', () => {
  const db = useTestDatabase();
  let pdb: PostgresDatabase;
  let knex: Knex;

  before(async () => {
    pdb = new PostgresDatabase(db().config({ maxOpenConns: 10 }), pino({ level: 'silent' }));
    knex = pdb.driver();
    await knex.raw('create table notes (id serial primary key, body text not null)');
    await knex.raw('create table locks (id int primary key, v int not null)');
    await knex.raw('create table dots (k int not null)');
  });

  after(async () => {
    expect(pdb.getConnectionStats().inUse).to.equal(0);
    await pdb.close();
  });

  /**
   * One real serialization failure at COMMIT (knex#3370's shape): a concurrent serializable
   * transaction reads what `trx` writes and writes what `trx` reads, and commits first.
   */
  async function pivotAgainst(trx: Knex.Transaction): Promise<void> {
    const t1 = await knex.transaction(null, { isolationLevel: 'serializable' });
    await t1.raw('select count(*) from dots where k = 1');
    await trx.raw('select count(*) from dots where k = 2');
    await t1.raw('insert into dots values (2)');
    await trx.raw('insert into dots values (1)');
    await t1.commit();
  }

  describe('onStatement()', () => {
    it('is called once per callback statement, savepoints included, with no SQL and not for the manager’s own statements', async () => {
      const rec = recorder();
      const tm = new TxManager(pdb, pino({ level: 'silent' }), { hooks: rec });
      const sent: string[] = [];
      const onQuery = (q: { sql: string }) => sent.push(q.sql);
      knex.on('query', onQuery);
      try {
        await tm.withTransaction(
          async (trx) => {
            await trx('notes').insert({ body: 'secret-body' });
            await trx('notes').select('id');
            await tm.withTransaction((inner) => inner.raw('select 1'), { propagation: 'nested' });
            await tm.withTransaction((joined) => joined.raw('select 2'));
          },
          { isolationLevel: 'repeatable read', timeoutMs: 5_000 },
        );
      } finally {
        knex.off('query', onQuery);
      }
      // BEGIN with the xid and the timeout settings, SAVEPOINT, RELEASE and COMMIT went out too.
      const normalised = (sql: string): string =>
        withoutOrigin(sql)
          .replace(/\btrx\d+\b/, 'trxN')
          .replace(/'\d+ms'/g, "'Nms'");
      expect(sent.map(normalised)).to.deep.equal([
        "BEGIN TRANSACTION ISOLATION LEVEL repeatable read; select pg_current_xact_id()::text as xid, set_config('statement_timeout', 'Nms', true), set_config('idle_in_transaction_session_timeout', 'Nms', true)",
        'insert into "notes" ("body") values ($1)',
        'select "id" from "notes"',
        'SAVEPOINT trxN;',
        'select 1',
        'RELEASE SAVEPOINT trxN;',
        'select 2',
        'COMMIT;',
      ]);
      expect(rec.names()).to.deep.equal([
        'onStatement',
        'onStatement',
        'onStatement',
        'onStatement',
        'onEnd',
      ]);
      for (const e of rec.events.slice(0, 4))
        expect(e.info).to.deep.equal({ attempt: 1, isolationLevel: 'repeatable read', readOnly: false });
      expect(JSON.stringify(rec.events)).not.to.contain('secret-body');
    });

    it('reports readOnly for a read-only transaction and is not called for beginTx() handles', async () => {
      const rec = recorder();
      const tm = new TxManager(pdb, pino({ level: 'silent' }));
      tm.addHooks(rec);
      await tm.withReadOnlyTransaction((trx) => trx('notes').count());
      expect(rec.events[0]).to.deep.equal({
        hook: 'onStatement',
        info: { attempt: 1, isolationLevel: undefined, readOnly: true },
      });
      rec.events.length = 0;
      const trx = await tm.beginTx();
      await trx('notes').count();
      await trx.commit();
      expect(rec.events).to.deep.equal([]);
    });
  });

  describe('beforeRetry()', () => {
    it('sees a real deadlock before the retry, between the attempts’ statements, then onEnd once', async () => {
      const recs = [recorder(), recorder()];
      const managers = recs.map((rec) => new TxManager(pdb, pino({ level: 'silent' }), { hooks: rec }));
      const attempts = await runRealDeadlock(knex, [managers[0]!, managers[1]!]);
      const victim = attempts[0] === 2 ? recs[0]! : recs[1]!;
      const winner = attempts[0] === 2 ? recs[1]! : recs[0]!;
      expect(victim.names()).to.deep.equal([
        ...Array<string>(3).fill('onStatement'),
        'beforeRetry',
        ...Array<string>(3).fill('onStatement'),
        'onEnd',
      ]);
      expect(victim.events.filter((e) => e.hook === 'onStatement').map((e) => e.info.attempt)).to.deep.equal([
        1, 1, 1, 2, 2, 2,
      ]);
      const retry = victim.events[3]!.info as TxRetryInfo;
      expect(retry).to.include({ attempt: 1, reason: 'deadlock', sqlState: '40P01' });
      expect(retry.delayMs).to.be.within(0, 10);
      expect(retry.error).to.be.instanceOf(Error);
      expect(victim.events[7]!.info).to.include({ outcome: 'committed', attempts: 2, retryVetoed: false });
      expect(victim.events[7]!.info).not.to.have.property('error');
      expect(winner.names()).to.deep.equal([...Array<string>(3).fill('onStatement'), 'onEnd']);
      expect(winner.events[3]!.info).to.include({ outcome: 'committed', attempts: 1 });
      expect(await knex('locks').orderBy('id').pluck('v')).to.deep.equal([2, 2]);
    });

    it('vetoes the retry when it returns false: the caller gets the error as on exhaustion', async () => {
      await knex('dots').del();
      const { logger, lines } = captureLogger();
      const metrics = new Metrics();
      const rec = recorder();
      const tm = new TxManager(pdb, logger, { metrics, hooks: rec });
      tm.addHooks({ beforeRetry: () => false });
      let calls = 0;
      const err: unknown = await tm
        .withTransaction(
          async (trx) => {
            calls++;
            await pivotAgainst(trx);
          },
          { isolationLevel: 'serializable' },
        )
        .then(
          () => expect.fail('the transaction committed'),
          (e: unknown) => e,
        );
      expect(err).to.be.instanceOf(SerializationError);
      expect(calls).to.equal(1);
      expect(rec.names()).to.deep.equal(['onStatement', 'onStatement', 'beforeRetry', 'onEnd']);
      const end = rec.events.at(-1)!.info as TxEndInfo;
      expect(end).to.include({
        outcome: 'retry_exhausted',
        attempts: 1,
        retryVetoed: true,
        isolationLevel: 'serializable',
        readOnly: false,
      });
      expect(end.error).to.equal(err);
      expect(end.durationMs).to.be.a('number').and.greaterThan(0);
      expect(await metricValue(metrics.txRetries)).to.equal(0);
      expect(await metricValue(metrics.txEnded, { outcome: 'retry_exhausted' })).to.equal(1);
      expect(lines.filter((l) => l.msg === 'transaction failed transiently; retrying')).to.deep.equal([]);
      const final = lines.filter((l) => l.level === ERROR);
      expect(final).to.have.length(1);
      expect(final[0]).to.include({
        msg: 'transaction failed; a beforeRetry hook vetoed its retry',
        retryVetoed: true,
        sqlState: '40001',
        attempts: 1,
      });
      expect(await knex('dots').pluck('k')).to.deep.equal([2]);
    });

    it('lets a process-wide budget of one retry per second, on db.txManager, ration real serialization failures', async () => {
      await knex('dots').del();
      let now = 0;
      const budget = new RetryBudget(1_000, () => now);
      const remove = pdb.txManager.addHooks(budget);
      const before = {
        retries: await metricValue(pdb.metrics.txRetries, { reason: 'serialization' }),
        exhausted: await metricValue(pdb.metrics.txEnded, { outcome: 'retry_exhausted' }),
      };
      const run = (pivotAttempts: number) => {
        let calls = 0;
        return pdb
          .withTransaction(
            async (trx) => {
              calls++;
              if (calls <= pivotAttempts) await pivotAgainst(trx);
              else await trx.raw('insert into dots values (9)');
            },
            { isolationLevel: 'serializable', retry: { maxAttempts: 5, baseDelayMs: 1, maxDelayMs: 5 } },
          )
          .then(
            () => ({ calls, error: undefined as unknown }),
            (error: unknown) => ({ calls, error }),
          );
      };
      try {
        // A fails on every attempt: its first retry takes the second's only token, its second is vetoed.
        const a = await run(Infinity);
        // B, in the same second: vetoed at its first failure.
        const b = await run(Infinity);
        now += 1_000;
        // C, a second later: its one failure is retried, and it commits.
        const c = await run(1);
        expect([a.calls, b.calls, c.calls]).to.deep.equal([2, 1, 2]);
        expect(a.error).to.be.instanceOf(SerializationError);
        expect(b.error).to.be.instanceOf(SerializationError);
        expect(c.error).to.equal(undefined);
        expect({ granted: budget.granted, vetoed: budget.vetoed }).to.deep.equal({ granted: 2, vetoed: 2 });
        expect(await metricValue(pdb.metrics.txRetries, { reason: 'serialization' })).to.equal(
          before.retries + 2,
        );
        expect(await metricValue(pdb.metrics.txEnded, { outcome: 'retry_exhausted' })).to.equal(
          before.exhausted + 2,
        );
        expect((await knex('dots').pluck('k')).filter((k) => k === 9)).to.have.length(1);
      } finally {
        remove();
      }
    });

    it('is not called for a permanent error, and onEnd reports rolled_back with the caller’s error', async () => {
      const rec = recorder();
      const tm = new TxManager(pdb, pino({ level: 'silent' }), { hooks: rec });
      const boom = new Error('application says no');
      const err: unknown = await tm
        .withTransaction(async (trx) => {
          await trx('notes').insert({ body: 'x' });
          throw boom;
        })
        .catch((e: unknown) => e);
      expect(err).to.equal(boom);
      expect(rec.names()).to.deep.equal(['onStatement', 'onEnd']);
      expect(rec.events[1]!.info).to.include({
        outcome: 'rolled_back',
        attempts: 1,
        error: boom,
        retryVetoed: false,
      });
    });
  });

  describe('onEnd()', () => {
    it('is called once per outermost transaction: requiresNew is one, required and nested are not', async () => {
      const rec = recorder();
      const tm = new TxManager(pdb, pino({ level: 'silent' }), {
        hooks: { onEnd: (info) => rec.onEnd!(info) },
      });
      await tm.withTransaction(async () => {
        await tm.withTransaction(() => Promise.resolve());
        await tm.withTransaction(() => Promise.resolve(), { propagation: 'nested' });
        await tm.withTransaction(() => Promise.resolve(), { propagation: 'requiresNew' });
      });
      expect(rec.events.map((e) => (e.info as TxEndInfo).outcome)).to.deep.equal(['committed', 'committed']);
    });

    it('reports timeout with the TransactionTimeoutError the caller gets', async () => {
      const rec = recorder();
      const tm = new TxManager(pdb, pino({ level: 'silent' }), { hooks: rec });
      const err: unknown = await tm
        .withTimeout(200, (trx) => trx.raw('select pg_sleep(5)'))
        .catch((e: unknown) => e);
      expect(err).to.be.instanceOf(TransactionTimeoutError);
      const end = rec.events.at(-1)!.info as TxEndInfo;
      expect(end).to.include({ outcome: 'timeout', attempts: 1, error: err });
      expect(end.durationMs).to.be.within(150, 2_000);
    });
  });

  describe('isolation of hook failures', () => {
    it('never breaks a transaction when hooks throw or reject, and warns once per hook method', async () => {
      await knex('dots').del();
      const { logger, lines } = captureLogger('debug');
      const rec = recorder();
      const broken: TxHooks = {
        onStatement: () => {
          throw new Error('statement hook broke');
        },
        beforeRetry: () => {
          throw new Error('retry hook broke');
        },
        onEnd: () => Promise.reject(new Error('end hook rejected')) as unknown as void,
      };
      const tm = new TxManager(pdb, logger, { hooks: broken });
      tm.addHooks(rec);
      for (let i = 0; i < 2; i++) {
        let calls = 0;
        await tm.withTransaction(
          async (trx) => {
            calls++;
            if (calls === 1) await pivotAgainst(trx);
            else await trx.raw('insert into dots values (7)');
          },
          { isolationLevel: 'serializable' },
        );
        expect(calls).to.equal(2);
      }
      await new Promise((resolve) => setImmediate(resolve));
      expect((await knex('dots').pluck('k')).filter((k) => k === 7)).to.have.length(2);
      // The recorder, added after the broken hooks, still saw every call.
      expect(rec.names().filter((n) => n === 'beforeRetry')).to.have.length(2);
      expect(rec.names().filter((n) => n === 'onEnd')).to.have.length(2);
      const warned = lines.filter((l) => l.level === WARN && typeof l.hook === 'string');
      expect(warned.map((l) => l.hook).sort()).to.deep.equal(['beforeRetry', 'onEnd', 'onStatement']);
      const again = lines.filter((l) => l.msg === 'transaction hook threw again; ignored');
      // onStatement: (2 statements + 1 on the retry) x 2 transactions = 6 failures; beforeRetry 2; onEnd 2.
      expect(again.filter((l) => l.hook === 'onStatement')).to.have.length(5);
      expect(again.filter((l) => l.hook === 'beforeRetry')).to.have.length(1);
      expect(again.filter((l) => l.hook === 'onEnd')).to.have.length(1);
      expect(lines.filter((l) => l.level >= ERROR)).to.deep.equal([]);
    });

    it('stops calling hooks once removed, and calls an object added twice once', async () => {
      const rec = recorder();
      const tm = new TxManager(pdb, pino({ level: 'silent' }));
      const remove = tm.addHooks(rec);
      tm.addHooks(rec);
      await tm.withTransaction((trx) => trx.raw('select 1'));
      expect(rec.names()).to.deep.equal(['onStatement', 'onEnd']);
      remove();
      remove();
      await tm.withTransaction((trx) => trx.raw('select 1'));
      expect(rec.events).to.have.length(2);
    });
  });
});
