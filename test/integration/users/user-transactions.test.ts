import { expect } from 'chai';
import { TxManager } from '../../../src/db/tx/tx-manager.js';
import { UniqueViolationError } from '../../../src/db/errors/errors.js';
import { useUserRepository } from '../../support/user-fixture.js';
import pino from 'pino';

class Rollback extends Error {}

/** Runs `fn` in `tx.withTransaction` (TxManager or Database) and swallows the Rollback it throws to undo its work. */
async function rolledBack(tx: Pick<TxManager, 'withTransaction'>, fn: () => Promise<void>): Promise<void> {
  try {
    await tx.withTransaction(async () => {
      await fn();
      throw new Rollback();
    });
  } catch (err) {
    if (!(err instanceof Rollback)) throw err;
  }
}

describe('UserRepository in transactions', () => {
  const fx = useUserRepository();
  let tx: TxManager;

  before(() => {
    tx = new TxManager(fx.database(), pino({ level: 'silent' }));
  });

  it('joins the ambient transaction of db.withTransaction without a trx: every write disappears on rollback', async () => {
    const repo = fx.repo();
    const before = await fx.knex()('users').select('*').orderBy('id');
    let createdId: string | undefined;
    let seenInside: string | undefined;
    await rolledBack(fx.database(), async () => {
      const user = await repo.create({ email: 'ambient@example.com', name: 'Ambient' });
      createdId = user.id;
      // Visible inside: the read runs on the transaction's connection.
      seenInside = (await repo.findByEmail('AMBIENT@example.com'))?.id;
      await repo.update('1', { name: 'Changed' }, 1);
      await repo.softDelete('2');
      await repo.restore('4');
      await repo.upsertByEmail({ email: 'alan@example.com', name: 'Upserted' });
      await repo.insertMany([{ email: 'many-ambient@example.com', name: 'Many' }]);
      await repo.copyIn([{ email: 'copy-ambient@example.com', name: 'Copy' }]);
      expect(await repo.count()).to.equal(
        before.filter((u: { status: string }) => u.status !== 'deleted').length + 3,
      );
      expect(seenInside).to.equal(user.id);
    });
    expect(createdId).to.be.a('string');
    expect(seenInside).to.equal(createdId);
    expect(await fx.knex()('users').select('*').orderBy('id')).to.deep.equal(before);
  });

  it('joins TxManager.withTransaction the same way', async () => {
    await rolledBack(tx, async () => {
      const created = await fx.repo().create({ email: 'txm@example.com', name: 'TxManager' });
      expect((await fx.repo().findByEmail('txm@example.com'))?.id).to.equal(created.id);
    });
    expect(await fx.repo().findByEmail('txm@example.com')).to.equal(undefined);
  });

  it('commits the ambient transaction with the repository writes in it', async () => {
    const id = await tx.withTransaction(
      async () => (await fx.repo().create({ email: 'kept@example.com', name: 'Kept' })).id,
    );
    expect((await fx.repo().getById(id)).email).to.equal('kept@example.com');
  });

  it('uses an explicit executor over the ambient transaction', async () => {
    const trx = await fx.knex().transaction();
    try {
      const created = await fx.repo().create({ email: 'explicit@example.com', name: 'Explicit' }, trx);
      expect(await fx.repo().findByEmail('explicit@example.com')).to.equal(undefined);
      expect((await fx.repo().findByEmail('explicit@example.com', trx))?.id).to.equal(created.id);
    } finally {
      await trx.rollback();
    }
    expect(await fx.repo().findByEmail('explicit@example.com')).to.equal(undefined);
  });

  it('undoes only its own savepoint when a bulk load fails inside a transaction that goes on', async () => {
    const outerId = await tx.withTransaction(async () => {
      const outer = await fx.repo().create({ email: 'outer@example.com', name: 'Outer' });
      const failed = await fx
        .repo()
        .insertMany([
          { email: 'inner1@example.com', name: 'Inner' },
          { email: 'OUTER@example.com', name: 'Dup' },
        ])
        .catch((err: unknown) => err);
      expect(failed).to.be.instanceOf(UniqueViolationError);
      const copied = await fx
        .repo()
        .copyIn([
          { email: 'inner2@example.com', name: 'Inner' },
          { email: 'Outer@Example.com', name: 'Dup' },
        ])
        .catch((err: unknown) => err);
      expect(copied).to.be.instanceOf(UniqueViolationError);
      return outer.id;
    });
    expect((await fx.repo().findByEmail('outer@example.com'))?.id).to.equal(outerId);
    expect(await fx.repo().findByEmail('inner1@example.com')).to.equal(undefined);
    expect(await fx.repo().findByEmail('inner2@example.com')).to.equal(undefined);
  });
});
