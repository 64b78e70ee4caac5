import { setTimeout as delay } from 'node:timers/promises';
import { expect } from 'chai';
import type { Knex } from 'knex';
import pino from 'pino';
import { TransactionStateError } from '../../../../src/db/errors/errors.js';
import { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { executorFor } from '../../../../src/db/tx/tx-context.js';
import { TxManager } from '../../../../src/db/tx/tx-manager.js';
import { useTestDatabase } from '../../../support/test-database.js';

const silent = pino({ level: 'silent' });

describe('TxManager ambient context (real PostgreSQL)', () => {
  const db = useTestDatabase();
  let pdb: PostgresDatabase;
  let knex: Knex;
  let tm: TxManager;

  /** A repository-style call: no explicit trx, so it joins whatever transaction the call chain is in. */
  const addNote = (body: string, trx?: Knex.Transaction) => executorFor(knex, trx)('notes').insert({ body });
  const bodies = async (): Promise<string[]> => knex('notes').orderBy('body').pluck('body');

  before(async () => {
    pdb = new PostgresDatabase(db().config({ maxOpenConns: 4 }), silent);
    knex = pdb.driver();
    tm = new TxManager(pdb, silent);
    await knex.raw('create table notes (body text not null)');
  });

  beforeEach(async () => {
    await knex('notes').del();
  });

  after(async () => {
    expect((knex.client as { pool: { numUsed(): number } }).pool.numUsed()).to.equal(0);
    expect(pdb.getConnectionStats().inUse).to.equal(0);
    await pdb.close();
  });

  it('has no ambient transaction outside withTransaction', () => {
    expect(tm.current()).to.equal(undefined);
    expect(executorFor(knex)).to.equal(knex);
  });

  it('carries the transaction across awaits, timers, setImmediate and Promise.all', async () => {
    await tm.withTransaction(async (trx) => {
      expect(tm.current()).to.equal(trx);
      await delay(5);
      expect(tm.current()).to.equal(trx);
      const fromTimer = await new Promise((resolve) => setTimeout(() => resolve(tm.current()), 5));
      const fromImmediate = await new Promise((resolve) => setImmediate(() => resolve(tm.current())));
      const fromAll = await Promise.all([1, 2, 3].map(async () => (await delay(1), tm.current())));
      expect(fromTimer).to.equal(trx);
      expect(fromImmediate).to.equal(trx);
      expect(fromAll).to.deep.equal([trx, trx, trx]);
    });
  });

  it('keeps two concurrent call chains apart: each sees only its own transaction', async () => {
    let first: Knex.Transaction | undefined;
    let second: Knex.Transaction | undefined;
    const chain = (set: (t: Knex.Transaction) => void) =>
      tm.withTransaction(async (trx) => {
        set(trx);
        for (let i = 0; i < 5; i++) {
          await delay(2);
          expect(tm.current()).to.equal(trx);
          await addNote(`note-${String(i)}`);
        }
      });
    await Promise.all([chain((t) => (first = t)), chain((t) => (second = t))]);
    expect(first).to.not.equal(undefined);
    expect(first).to.not.equal(second);
    expect(await bodies()).to.have.length(10);
  });

  it('is gone after the transaction ends, also for a timer the callback left behind', async () => {
    let late: { current: unknown; executor: unknown } | undefined;
    let ended = false;
    const fired = new Promise<void>((resolve) => {
      void tm
        .withTransaction((trx) => {
          // Left behind by the callback, it acts only once withTransaction has resolved: no race
          // between a fixed timer and how long the transaction takes.
          const timer = setInterval(() => {
            if (!ended) return;
            clearInterval(timer);
            let executor: unknown;
            try {
              executor = executorFor(knex);
            } catch (e) {
              executor = e;
            }
            late = { current: tm.current(), executor };
            resolve();
          }, 5);
          return trx.raw('select 1');
        })
        .then(() => {
          ended = true;
        });
    });
    await delay(1);
    expect(tm.current()).to.equal(undefined);
    await fired;
    expect(late?.current).to.equal(undefined);
    // The floating callback must not silently write through the pool instead (drizzle#6083).
    expect(late?.executor).to.be.instanceOf(TransactionStateError);
  });

  it('joins a repository call without an explicit trx to the ambient transaction: its rollback removes the write', async () => {
    const err = await tm
      .withTransaction(async () => {
        await addNote('rolled back with its transaction');
        throw new Error('undo');
      })
      .catch((e: unknown) => e);
    expect((err as Error).message).to.equal('undo');
    expect(await bodies()).to.deep.equal([]);
    await tm.withTransaction(() => addNote('committed with its transaction'));
    expect(await bodies()).to.deep.equal(['committed with its transaction']);
  });

  it('prefers an explicit executor over the ambient transaction', async () => {
    await tm.withTransaction(async (trx) => {
      expect(executorFor(knex, trx)).to.equal(trx);
      const other = await tm.beginTx();
      expect(executorFor(knex, other)).to.equal(other);
      await other.rollback();
    });
  });
});
