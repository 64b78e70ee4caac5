import { expect } from 'chai';
import { useTestDatabase } from '../../../support/test-database.js';
import { useDatabases } from '../../../support/postgres-database-helpers.js';

describe('PostgresDatabase connection hooks', () => {
  const testDb = useTestDatabase();
  const open = useDatabases();

  it('runs onAcquire and onRelease around every checkout, on the same connection, until removed', async () => {
    const db = open(testDb().config({ maxOpenConns: 2 })).db;
    const events: Array<[string, unknown]> = [];
    const remove = db.addConnectionHook({
      onAcquire: (c) => events.push(['acquire', c]),
      onRelease: (c) => events.push(['release', c]),
    });
    await db.driver().raw('select 1');
    await db.withTransaction((trx) => trx.raw('select 2'));
    expect(events.map(([e]) => e)).to.deep.equal(['acquire', 'release', 'acquire', 'release']);
    expect(events[0]![1]).to.equal(events[1]![1]);
    expect(events[2]![1]).to.equal(events[3]![1]);

    remove();
    await db.driver().raw('select 3');
    expect(events).to.have.length(4);
  });

  it('fails the acquire and returns the connection when onAcquire throws', async () => {
    const db = open(testDb().config({ maxOpenConns: 1 })).db;
    const remove = db.addConnectionHook({
      onAcquire: () => {
        throw new Error('refused by hook');
      },
    });
    const err: unknown = await db
      .driver()
      .raw('select 1')
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err)
      .to.be.instanceOf(Error)
      .with.property('message')
      .that.matches(/refused by hook/);
    remove();
    expect(db.getConnectionStats().inUse).to.equal(0);
    await db.driver().raw('select 1'); // the single connection is usable again
  });
});
