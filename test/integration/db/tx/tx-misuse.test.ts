import { setTimeout as delay } from 'node:timers/promises';
import { expect } from 'chai';
import type { Knex } from 'knex';
import pino from 'pino';
import {
  ForeignConnectionError,
  TransactionAbortedError,
  TransactionStateError,
} from '../../../../src/db/errors/errors.js';
import { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { TxManager } from '../../../../src/db/tx/tx-manager.js';
import { captureLogger } from '../../../support/capture-logger.js';
import { adminQuery, useTestDatabase } from '../../../support/test-database.js';

const silent = pino({ level: 'silent' });

describe('TxManager misuse (real PostgreSQL)', () => {
  const db = useTestDatabase();
  let pdb: PostgresDatabase;
  let knex: Knex;
  let tm: TxManager;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  const ids = async (): Promise<number[]> => knex('items').orderBy('id').pluck('id');
  const numUsed = (): number => (knex.client as { pool: { numUsed(): number } }).pool.numUsed();

  before(async () => {
    pdb = new PostgresDatabase(db().config({ maxOpenConns: 2 }), silent);
    knex = pdb.driver();
    tm = new TxManager(pdb, silent);
    await knex.raw('create table items (id int primary key)');
    process.on('unhandledRejection', onUnhandled);
  });

  beforeEach(async () => {
    await knex('items').del();
  });

  afterEach(() => {
    expect(unhandled).to.deep.equal([]);
    expect(numUsed()).to.equal(0);
  });

  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    expect(pdb.getConnectionStats().inUse).to.equal(0);
    await pdb.close();
  });

  it('rejects a query issued on the transaction after it ended with TransactionStateError, without an unhandled rejection', async () => {
    let leaked: Knex.Transaction | undefined;
    await tm.withTransaction((trx) => {
      leaked = trx;
      return trx('items').insert({ id: 1 });
    });
    const err = await leaked!('items')
      .insert({ id: 2 })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).to.be.instanceOf(TransactionStateError);
    expect(await ids()).to.deep.equal([1]);
  });

  it('commits the value of a callback that returns a non-promise', async () => {
    const value = await tm.withTransaction(((trx: Knex.Transaction) => {
      expect(tm.current()).to.equal(trx);
      return 42;
    }) as unknown as (trx: Knex.Transaction) => Promise<number>);
    expect(value).to.equal(42);
  });

  it('rolls back and rethrows the very error a callback throws synchronously', async () => {
    const thrown = new Error('sync failure');
    const err = await tm
      .withTransaction(() => {
        throw thrown;
      })
      .catch((e: unknown) => e);
    expect(err).to.equal(thrown);
  });

  it('waits before COMMIT for a query the callback started but did not await', async () => {
    await tm.withTransaction((trx) => {
      void trx('items').insert({ id: 3 }).then();
      return Promise.resolve();
    });
    expect(await ids()).to.deep.equal([3]);
  });

  it('never runs a builder that is not awaited (knex builders are lazy), and still commits', async () => {
    await tm.withTransaction((trx) => {
      trx('items').insert({ id: 4 }); // never started: no then(), no await
      return trx('items').insert({ id: 5 });
    });
    expect(await ids()).to.deep.equal([5]);
  });

  it('rejects with TransactionAbortedError when a query the callback did not await failed', async () => {
    await knex('items').insert({ id: 6 });
    const err = await tm
      .withTransaction((trx) => {
        void trx('items')
          .insert({ id: 6 })
          .then(undefined, () => {});
        return Promise.resolve();
      })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(TransactionAbortedError);
  });

  it('refuses trx.commit() and trx.rollback() inside withTransaction: returning commits, throwing rolls back', async () => {
    const err = await tm
      .withTransaction(async (trx) => {
        await trx('items').insert({ id: 7 });
        await trx.commit();
      })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(TransactionStateError);
    expect(await ids()).to.deep.equal([]);
  });

  it('gives the caller its own error, not the failed ROLLBACK, and destroys the dead connection', async () => {
    const mine = new Error('application failure');
    const err = await tm
      .withTransaction(async (trx) => {
        await trx('items').insert({ id: 8 });
        const { rows } = await trx.raw<{ rows: Array<{ pid: number }> }>('select pg_backend_pid() as pid');
        await adminQuery('select pg_terminate_backend($1, 5000)', [rows[0]!.pid]);
        await delay(50);
        throw mine;
      })
      .catch((e: unknown) => e);
    expect(err).to.equal(mine);
    expect(numUsed()).to.equal(0);
    // The pool hands out a working connection next, not the dead one.
    await tm.withTransaction((trx) => trx('items').insert({ id: 9 }));
    expect(await ids()).to.deep.equal([9]);
  });

  describe('foreign-connection guard (knex#1171)', () => {
    it("refuses a base-knex query inside a transaction with ForeignConnectionError in 'error' mode", async () => {
      const guarded = new TxManager(pdb, silent, { transactions: { foreignConnectionGuard: 'error' } });
      const err = await guarded
        .withTransaction(async (trx) => {
          await trx('items').insert({ id: 10 });
          await knex('items').select('id');
        })
        .catch((e: unknown) => e);
      expect(err).to.be.instanceOf(ForeignConnectionError);
      expect(await ids()).to.deep.equal([]);
      // requiresNew and beginTx take their own connection on purpose: allowed.
      await guarded.withTransaction(async () => {
        await guarded.withTransaction((inner) => inner('items').insert({ id: 11 }), {
          propagation: 'requiresNew',
        });
      });
      expect(await ids()).to.deep.equal([11]);
    });

    it("logs the second checkout at warn with its stack in 'warn' mode, and lets it run", async () => {
      const { logger, lines } = captureLogger();
      const warned = new TxManager(pdb, logger, { transactions: { foreignConnectionGuard: 'warn' } });
      await warned.withTransaction(async () => {
        await knex('items').select('id');
      });
      const warns = lines.filter((l) => l.level === 40);
      expect(warns).to.have.length(1);
      expect(String(warns[0]!.msg)).to.contain('second pool connection');
      // knex starts the query from a thenable job, so the stack ends in knex's runner, not here.
      expect(warns[0]!.stack).to.be.a('string');
    });

    it("says nothing about queries outside any transaction, nor inside one begun by a manager in 'off' mode", async () => {
      const { logger, lines } = captureLogger();
      const warned = new TxManager(pdb, logger, { transactions: { foreignConnectionGuard: 'warn' } });
      const quiet = new TxManager(pdb, logger, { transactions: { foreignConnectionGuard: 'off' } });
      await warned.withTransaction((trx) => trx.raw('select 1'));
      await knex('items').select('id');
      await quiet.withTransaction(async () => {
        await knex('items').select('id');
      });
      expect(lines.filter((l) => l.level === 40)).to.deep.equal([]);
    });
  });
});
