import { expect } from 'chai';
import type { Knex } from 'knex';
import pino from 'pino';
import { ReadOnlyTransactionError, TxOptionsError } from '../../../../src/db/errors/errors.js';
import type { TxOptions } from '../../../../src/db/database.js';
import { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { TxManager } from '../../../../src/db/tx/tx-manager.js';
import { useTestDatabase } from '../../../support/test-database.js';

const silent = pino({ level: 'silent' });

type TarnView = {
  numUsed(): number;
  on(event: string, fn: () => void): void;
  removeListener(event: string, fn: () => void): void;
};
const poolOf = (knex: Knex): TarnView => (knex.client as { pool: TarnView }).pool;

describe('TxManager options (real PostgreSQL)', () => {
  const db = useTestDatabase();
  let pdb: PostgresDatabase;
  let knex: Knex;
  let tm: TxManager;

  before(async () => {
    pdb = new PostgresDatabase(db().config({ maxOpenConns: 2 }), silent);
    knex = pdb.driver();
    tm = new TxManager(pdb, silent);
    await knex.raw('create table notes (id serial primary key, body text not null)');
  });

  after(async () => {
    expect(poolOf(knex).numUsed()).to.equal(0);
    expect(pdb.getConnectionStats().inUse).to.equal(0);
    await pdb.close();
  });

  /** What the transaction reports about itself, from inside. */
  async function modes(
    opts: TxOptions,
  ): Promise<{ isolation: string; readOnly: string; deferrable: string }> {
    return tm.withTransaction(async (trx) => {
      const show = async (name: string) =>
        ((await trx.raw<{ rows: Array<Record<string, string>> }>(`show ${name}`)).rows[0] ?? {})[name]!;
      return {
        isolation: await show('transaction_isolation'),
        readOnly: await show('transaction_read_only'),
        deferrable: await show('transaction_deferrable'),
      };
    }, opts);
  }

  it('runs with the server defaults when given no options', async () => {
    expect(await modes({})).to.deep.equal({
      isolation: 'read committed',
      readOnly: 'off',
      deferrable: 'off',
    });
  });

  for (const isolationLevel of ['read committed', 'repeatable read', 'serializable'] as const) {
    it(`reports isolation "${isolationLevel}" inside the callback when asked for it`, async () => {
      expect((await modes({ isolationLevel })).isolation).to.equal(isolationLevel);
    });
  }

  it('reports read-only, and serializable read-only deferrable, inside the callback', async () => {
    expect(await modes({ readOnly: true })).to.include({ readOnly: 'on', deferrable: 'off' });
    expect(await modes({ isolationLevel: 'serializable', readOnly: true, deferrable: true })).to.deep.equal({
      isolation: 'serializable',
      readOnly: 'on',
      deferrable: 'on',
    });
  });

  it('applies isolation and read-only as the first statement (BEGIN itself), deferrable right after it in the same message', async () => {
    const sent: string[] = [];
    const onQuery = (q: { sql: string }) => sent.push(q.sql);
    knex.on('query', onQuery);
    try {
      await tm.withTransaction((trx) => trx.raw('select 1'), {
        isolationLevel: 'serializable',
        readOnly: true,
        deferrable: true,
      });
    } finally {
      knex.off('query', onQuery);
    }
    expect(sent).to.deep.equal([
      'BEGIN TRANSACTION ISOLATION LEVEL serializable READ ONLY; SET TRANSACTION DEFERRABLE',
      'select 1',
      'COMMIT;',
    ]);
  });

  it('rejects an INSERT in withReadOnlyTransaction with ReadOnlyTransactionError and writes nothing', async () => {
    const err = await tm
      .withReadOnlyTransaction(async (trx) => {
        await trx('notes').insert({ body: 'should not be written' });
      })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(ReadOnlyTransactionError);
    expect((err as Error).cause).to.have.property('code', '25006');
    expect(await knex('notes').count({ n: '*' })).to.deep.equal([{ n: '0' }]);
  });

  it('rejects withReadOnlyTransaction with readOnly: false before taking a connection', async () => {
    const err = await tm
      .withReadOnlyTransaction(() => Promise.resolve(), { readOnly: false })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(TxOptionsError);
  });

  const invalid: Array<[string, TxOptions]> = [
    ['an unknown isolation level', { isolationLevel: 'chaos' as never }],
    ['deferrable without serializable read-only', { deferrable: true }],
    ['a negative timeout', { timeoutMs: -1 }],
  ];
  for (const [name, opts] of invalid) {
    it(`rejects ${name} with TxOptionsError before any connection is taken`, async () => {
      let acquires = 0;
      const onAcquire = (): void => {
        acquires++;
      };
      const pool = poolOf(knex);
      pool.on('acquireRequest', onAcquire);
      let ran = false;
      try {
        const err = await tm
          .withTransaction(() => {
            ran = true;
            return Promise.resolve();
          }, opts)
          .catch((e: unknown) => e);
        expect(err).to.be.instanceOf(TxOptionsError);
        const begun = await tm.beginTx(opts).catch((e: unknown) => e);
        expect(begun).to.be.instanceOf(TxOptionsError);
      } finally {
        pool.removeListener('acquireRequest', onAcquire);
      }
      expect(ran).to.be.false;
      expect(acquires).to.equal(0);
    });
  }
});
