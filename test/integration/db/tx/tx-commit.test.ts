import { expect } from 'chai';
import type { Knex } from 'knex';
import pino from 'pino';
import {
  ForeignKeyViolationError,
  SerializationError,
  TransactionAbortedError,
  TransactionStateError,
  TransactionTimeoutError,
  UniqueViolationError,
} from '../../../../src/db/errors/errors.js';
import { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { TxManager } from '../../../../src/db/tx/tx-manager.js';
import { waitFor } from '../../../support/postgres-database-helpers.js';
import { useTestDatabase } from '../../../support/test-database.js';

const silent = pino({ level: 'silent' });

describe('TxManager COMMIT (real PostgreSQL)', () => {
  const db = useTestDatabase();
  let pdb: PostgresDatabase;
  let knex: Knex;
  let tm: TxManager;
  const count = async (table: string): Promise<number> => {
    const [row] = await knex(table).count({ n: '*' });
    return Number(row?.n);
  };

  before(async () => {
    pdb = new PostgresDatabase(db().config({ maxOpenConns: 3 }), silent);
    knex = pdb.driver();
    tm = new TxManager(pdb, silent);
    await knex.raw('create table parents (id int primary key)');
    await knex.raw(`create table children (
      id int primary key,
      parent_id int not null references parents (id) deferrable initially deferred)`);
    await knex.raw('create table dots (k int not null)');
  });

  beforeEach(async () => {
    await knex('children').del();
    await knex('parents').del();
    await knex('dots').del();
  });

  after(async () => {
    expect((knex.client as { pool: { numUsed(): number } }).pool.numUsed()).to.equal(0);
    expect(pdb.getConnectionStats().inUse).to.equal(0);
    await pdb.close();
  });

  it('reports a COMMIT answered with ROLLBACK as TransactionAbortedError when the callback swallowed a failed statement', async () => {
    await knex('parents').insert({ id: 1 });
    let calls = 0;
    const err = await tm
      .withTransaction(async (trx) => {
        calls++;
        await trx('children').insert({ id: 1, parent_id: 1 });
        await trx('parents')
          .insert({ id: 1 })
          .catch(() => {});
        return 'looked fine';
      })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(TransactionAbortedError);
    expect((err as Error).cause).to.have.property('code', '23505');
    expect(calls).to.equal(1);
    expect(await count('children')).to.equal(0);
  });

  it('surfaces a deferred foreign-key violation raised at COMMIT as ForeignKeyViolationError (knex#6141)', async () => {
    let calls = 0;
    const err = await tm
      .withTransaction(async (trx) => {
        calls++;
        await trx('children').insert({ id: 1, parent_id: 42 });
      })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(ForeignKeyViolationError);
    expect(calls).to.equal(1);
    expect(await count('children')).to.equal(0);
  });

  describe('beginTx()', () => {
    it('commits, and the handle then refuses every statement with a typed error', async () => {
      const trx = await pdb.beginTx();
      await trx('parents').insert({ id: 5 });
      await trx.commit();
      expect(await count('parents')).to.equal(1);
      const err = await trx('parents')
        .insert({ id: 6 })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).to.be.instanceOf(TransactionStateError);
      expect(await count('parents')).to.equal(1);
    });

    it('rolls back, releasing the connection', async () => {
      const trx = await tm.beginTx();
      await trx('parents').insert({ id: 7 });
      await trx.rollback();
      expect(await count('parents')).to.equal(0);
    });

    it('rejects commit() on a deferred 23503 (stock knex resolves undefined there)', async () => {
      const trx = await pdb.beginTx();
      await trx('children').insert({ id: 2, parent_id: 99 });
      const err = await Promise.resolve(trx.commit()).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(ForeignKeyViolationError);
      // The usual catch-and-rollback after a failed commit is a quiet no-op.
      await trx.rollback();
      expect(await count('children')).to.equal(0);
    });

    it('rejects commit() on a serialization failure raised by COMMIT (knex#3370)', async () => {
      const t1 = await tm.beginTx({ isolationLevel: 'serializable' });
      const t2 = await tm.beginTx({ isolationLevel: 'serializable' });
      await t1.raw('select count(*) from dots where k = 1');
      await t2.raw('select count(*) from dots where k = 2');
      await t1.raw('insert into dots values (2)');
      await t2.raw('insert into dots values (1)');
      await t1.commit();
      const err = await Promise.resolve(t2.commit()).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(SerializationError);
      expect((err as SerializationError).sqlState).to.equal('40001');
      expect(await knex('dots').pluck('k')).to.deep.equal([2]);
    });

    it('rejects commit() with TransactionAbortedError when COMMIT answers ROLLBACK', async () => {
      await knex('parents').insert({ id: 8 });
      const trx = await tm.beginTx();
      await trx('parents')
        .insert({ id: 8 })
        .catch(() => {});
      const err = await Promise.resolve(trx.commit()).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(TransactionAbortedError);
      // The statement that failed first: the duplicate key the transaction swallowed.
      expect((err as Error).cause).to.have.property('code', '23505');
    });

    it('rolls back by itself at its deadline; commit() then rejects with TransactionTimeoutError', async () => {
      const trx = await tm.beginTx({ timeoutMs: 100 });
      await trx('parents').insert({ id: 9 });
      const inUse = (): number => (knex.client as { pool: { numUsed(): number } }).pool.numUsed();
      // The deadline gives the connection back by itself (nothing here calls commit or rollback):
      // waited for, with a bound far past the 100 ms deadline, instead of a fixed sleep.
      await waitFor(() => inUse() === 0, 5_000);
      expect(trx.isCompleted(), 'the transaction ended at its deadline').to.equal(true);
      const err = await Promise.resolve(trx.commit()).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(TransactionTimeoutError);
      expect(await count('parents')).to.equal(0);
    });

    it('translates a unique violation at a statement for withTransaction, but leaves statement errors raw inside', async () => {
      await knex('parents').insert({ id: 10 });
      let inside: unknown;
      const outside = await tm
        .withTransaction(async (trx) => {
          try {
            await trx('parents').insert({ id: 10 });
          } catch (e) {
            inside = e;
            throw e;
          }
        })
        .catch((e: unknown) => e);
      expect(inside).to.have.property('code', '23505');
      expect(outside).to.be.instanceOf(UniqueViolationError);
      expect((outside as Error).cause).to.equal(inside);
    });
  });
});
