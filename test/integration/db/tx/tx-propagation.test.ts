import { expect } from 'chai';
import type { Knex } from 'knex';
import pino from 'pino';
import { TransactionAbortedError, TransactionStateError } from '../../../../src/db/errors/errors.js';
import { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { TxManager } from '../../../../src/db/tx/tx-manager.js';
import { Metrics } from '../../../../src/observability/metrics.js';
import { useTestDatabase } from '../../../support/test-database.js';

const silent = pino({ level: 'silent' });
const pidOf = async (trx: Knex.Transaction): Promise<number> =>
  (await trx.raw<{ rows: Array<{ pid: number }> }>('select pg_backend_pid() as pid')).rows[0]!.pid;

describe('TxManager propagation (real PostgreSQL)', () => {
  const db = useTestDatabase();
  let pdb: PostgresDatabase;
  let knex: Knex;
  let tm: TxManager;
  const names = async (): Promise<string[]> => knex('marks').orderBy('name').pluck('name');

  before(async () => {
    pdb = new PostgresDatabase(db().config({ maxOpenConns: 3 }), silent);
    knex = pdb.driver();
    tm = new TxManager(pdb, silent);
    await knex.raw('create table marks (name text primary key)');
  });

  beforeEach(async () => {
    await knex('marks').del();
  });

  after(async () => {
    expect((knex.client as { pool: { numUsed(): number } }).pool.numUsed()).to.equal(0);
    expect(pdb.getConnectionStats().inUse).to.equal(0);
    await pdb.close();
  });

  it("joins the ambient transaction with 'required': same transaction, same backend", async () => {
    await tm.withTransaction(async (outer) => {
      const outerPid = await pidOf(outer);
      await tm.withTransaction(async (inner) => {
        expect(inner).to.equal(outer);
        expect(await pidOf(inner)).to.equal(outerPid);
      });
    });
  });

  it("rolls a failed 'nested' block back to its savepoint only: the outer writes commit", async () => {
    await tm.withTransaction(async (trx) => {
      await trx('marks').insert({ name: 'outer-before' });
      const err = await tm
        .withTransaction(
          async (sp) => {
            await sp('marks').insert({ name: 'nested' });
            throw new Error('nested failure');
          },
          { propagation: 'nested' },
        )
        .catch((e: unknown) => e);
      expect((err as Error).message).to.equal('nested failure');
      await trx('marks').insert({ name: 'outer-after' });
    });
    expect(await names()).to.deep.equal(['outer-after', 'outer-before']);
  });

  it("keeps the outer transaction usable when a 'nested' block swallowed a failed statement", async () => {
    await tm.withTransaction(async (trx) => {
      await trx('marks').insert({ name: 'kept' });
      const err = await tm
        .withTransaction(
          async (sp) => {
            await sp('marks').insert({ name: 'lost' });
            await sp('marks')
              .insert({ name: 'kept' })
              .catch(() => {});
          },
          { propagation: 'nested' },
        )
        .catch((e: unknown) => e);
      expect(err).to.be.instanceOf(TransactionAbortedError);
      expect((err as Error).cause).to.have.property('code', '23505');
      await trx('marks').insert({ name: 'after' });
    });
    expect(await names()).to.deep.equal(['after', 'kept']);
  });

  it("commits 'requiresNew' work on another connection even when the outer transaction rolls back", async () => {
    const err = await tm
      .withTransaction(async (outer) => {
        await outer('marks').insert({ name: 'outer' });
        await tm.withTransaction(
          async (inner) => {
            expect(inner).not.to.equal(outer);
            expect(await pidOf(inner)).not.to.equal(await pidOf(outer));
            expect(tm.current()).to.equal(inner);
            await inner('marks').insert({ name: 'independent' });
          },
          { propagation: 'requiresNew' },
        );
        expect(tm.current()).to.equal(outer);
        throw new Error('outer fails');
      })
      .catch((e: unknown) => e);
    expect((err as Error).message).to.equal('outer fails');
    expect(await names()).to.deep.equal(['independent']);
  });

  it("starts a transaction of its own for 'nested' when there is no ambient one", async () => {
    await tm.withTransaction((trx) => trx('marks').insert({ name: 'alone' }), { propagation: 'nested' });
    expect(await names()).to.deep.equal(['alone']);
  });

  it('refuses to join with an isolation level or read-write mode the ambient transaction does not have', async () => {
    await tm.withTransaction(async () => {
      const err = await tm
        .withTransaction(() => Promise.resolve(), { isolationLevel: 'serializable' })
        .catch((e: unknown) => e);
      expect(err).to.be.instanceOf(TransactionStateError);
      expect((err as Error).message).to.contain('serializable');
    });
    await tm.withReadOnlyTransaction(async () => {
      const err = await tm
        .withTransaction(() => Promise.resolve(), { readOnly: false })
        .catch((e: unknown) => e);
      expect(err).to.be.instanceOf(TransactionStateError);
      const nested = await tm
        .withTransaction(() => Promise.resolve(), {
          propagation: 'nested',
          isolationLevel: 'repeatable read',
        })
        .catch((e: unknown) => e);
      expect(nested).to.be.instanceOf(TransactionStateError);
    });
  });

  it('lets read-only work and a matching isolation level join', async () => {
    await tm.withTransaction(
      async (outer) => {
        const joined = await tm.withReadOnlyTransaction((inner) => Promise.resolve(inner));
        expect(joined).to.equal(outer);
        const same = await tm.withTransaction((inner) => Promise.resolve(inner), {
          isolationLevel: 'repeatable read',
        });
        expect(same).to.equal(outer);
      },
      { isolationLevel: 'repeatable read' },
    );
  });

  it('retries only at the outermost transaction: a joined or nested serialization failure re-runs the outer callback', async () => {
    const metrics = new Metrics();
    const manager = new TxManager(pdb, silent, { metrics });
    let outerRuns = 0;
    let innerRuns = 0;
    let nestedRuns = 0;
    const raiseOnce = `do $$ begin raise exception 'conflict' using errcode = 'serialization_failure'; end $$`;
    await manager.withTransaction(async (trx) => {
      outerRuns++;
      await trx('marks').insert({ name: `outer-${outerRuns}` });
      await manager.withTransaction(async (inner) => {
        innerRuns++;
        if (outerRuns === 1) await inner.raw(raiseOnce);
      });
      await manager
        .withTransaction(
          async (sp) => {
            nestedRuns++;
            if (outerRuns === 2) await sp.raw(raiseOnce);
          },
          { propagation: 'nested' },
        )
        .catch((e: unknown) => {
          // A nested 40001 rolled back to its savepoint; rethrowing it retries the whole transaction.
          if (outerRuns === 2) throw e;
        });
    });
    expect({ outerRuns, innerRuns, nestedRuns }).to.deep.equal({ outerRuns: 3, innerRuns: 3, nestedRuns: 2 });
    expect(await names()).to.deep.equal(['outer-3']);
    const { values } = await metrics.txRetries.get();
    expect(values.reduce((n, v) => n + v.value, 0)).to.equal(2);
  });

  it("opens a savepoint handle with beginTx({ propagation: 'nested' }) inside an ambient transaction", async () => {
    await tm.withTransaction(async (trx) => {
      await trx('marks').insert({ name: 'outer' });
      const sp = await tm.beginTx({ propagation: 'nested' });
      await sp('marks').insert({ name: 'savepoint' });
      await sp.rollback();
      const sp2 = await tm.beginTx({ propagation: 'nested' });
      await sp2('marks').insert({ name: 'savepoint-2' });
      await sp2.commit();
    });
    expect(await names()).to.deep.equal(['outer', 'savepoint-2']);
  });
});
