import { expect } from 'chai';
import { UniqueViolationError } from '../../../src/db/index.js';
import { UserRepository } from '../../../src/users/user-repository.js';
import { withRollback } from '../../../src/testing/index.js';
import { useDatabases } from '../../support/postgres-database-helpers.js';
import { useTestDatabase } from '../../support/test-database.js';

describe('withRollback()', () => {
  const database = useTestDatabase();
  const open = useDatabases();
  const setup = () => {
    const { db } = open(database().config());
    return { db, users: new UserRepository(db.driver()) };
  };
  const countByEmail = async (db: ReturnType<typeof setup>['db'], email: string) =>
    Number(
      (
        await db
          .driver()
          .raw<{ rows: Array<{ n: string }> }>('select count(*) as n from users where email = ?', [email])
      ).rows[0]?.n,
    );

  it('lets the code under test see its own writes, and leaves nothing behind', async () => {
    const { db, users } = setup();
    const seen = await withRollback(db, async () => {
      await db.withTransaction(() => users.create({ email: 'sandbox@example.com', name: 'Sandbox' }));
      return (await users.findByEmail('sandbox@example.com'))?.name;
    });
    expect(seen).to.equal('Sandbox');
    expect(await countByEmail(db, 'sandbox@example.com')).to.equal(0);
  });

  it('runs a withTransaction that throws as a savepoint: only its own writes roll back', async () => {
    const { db, users } = setup();
    const found = await withRollback(db, async () => {
      await users.create({ email: 'kept@example.com', name: 'Kept' });
      const failed = await db
        .withTransaction(async () => {
          await users.create({ email: 'undone@example.com', name: 'Undone' });
          throw new Error('business rule');
        })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(failed).to.be.instanceOf(Error).with.property('message', 'business rule');
      return [await users.findByEmail('kept@example.com'), await users.findByEmail('undone@example.com')];
    });
    expect(found[0]?.name).to.equal('Kept');
    expect(found[1]).to.equal(undefined);
    expect(await countByEmail(db, 'kept@example.com')).to.equal(0);
  });

  it('turns requiresNew, serializable and read-only requests into savepoints that see the sandbox writes', async () => {
    const { db, users } = setup();
    const names = await withRollback(db, async () => {
      await users.create({ email: 'outer@example.com', name: 'Outer' });
      const viaNew = await db.txManager.withTransaction(
        async () => (await users.findByEmail('outer@example.com'))?.name,
        { propagation: 'requiresNew', isolationLevel: 'serializable' },
      );
      const viaReadOnly = await db.txManager.withReadOnlyTransaction(
        async () => (await users.findByEmail('outer@example.com'))?.name,
      );
      const pid = async (q: { raw(sql: string): Promise<{ rows: Array<{ pid: number }> }> }) =>
        (await q.raw('select pg_backend_pid() as pid')).rows[0]?.pid;
      const sandboxPid = await pid(db.txManager.current()!);
      const trx = await db.beginTx();
      const beginTxPid = await pid(trx);
      await trx.commit();
      return { viaNew, viaReadOnly, sandboxPid, beginTxPid };
    });
    expect(names.viaNew).to.equal('Outer');
    expect(names.viaReadOnly).to.equal('Outer');
    expect(names.beginTxPid).to.be.a('number').and.equal(names.sandboxPid);
  });

  it('gives the typed error a top-level transaction gives for a driver error in a plain knex statement', async () => {
    const { db } = setup();
    const insertTwice = () =>
      db.withTransaction(async (trx) => {
        await trx('users').insert({ email: 'twice@example.com', name: 'Twice' });
        await trx('users').insert({ email: 'twice@example.com', name: 'Twice' });
      });
    const topLevel = await insertTwice().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(topLevel).to.be.instanceOf(UniqueViolationError);
    const inSandbox = await withRollback(db, () =>
      insertTwice().then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    expect(inSandbox).to.be.instanceOf(UniqueViolationError);
    const nested = await db.withTransaction(() =>
      db.txManager.withTransaction(insertTwice, { propagation: 'nested' }).then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    expect(nested).to.be.instanceOf(UniqueViolationError);
  });

  it('returns the value of fn, rethrows its error unchanged, and rolls back in both cases', async () => {
    const { db, users } = setup();
    const boom = new Error('assertion failed');
    const err = await withRollback(db, async () => {
      await users.create({ email: 'thrown@example.com', name: 'Thrown' });
      throw boom;
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.equal(boom);
    expect(await countByEmail(db, 'thrown@example.com')).to.equal(0);
    expect(db.getConnectionStats().inUse).to.equal(0);
  });

  it('keeps concurrent sandboxes apart, each on its own connection', async () => {
    const { db, users } = setup();
    const [a, b] = await Promise.all(
      ['a', 'b'].map((tag) =>
        withRollback(db, async () => {
          await users.create({ email: `${tag}@sandbox.example.com`, name: tag });
          const other = tag === 'a' ? 'b' : 'a';
          // Both have written before either looks (each waits for the other's insert to be issued).
          await new Promise((resolve) => setImmediate(resolve));
          return {
            own: (await users.findByEmail(`${tag}@sandbox.example.com`))?.name,
            other: await users.findByEmail(`${other}@sandbox.example.com`),
          };
        }),
      ),
    );
    expect(a).to.deep.equal({ own: 'a', other: undefined });
    expect(b).to.deep.equal({ own: 'b', other: undefined });
  });
});
