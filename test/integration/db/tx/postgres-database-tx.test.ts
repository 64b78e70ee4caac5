import { expect } from 'chai';
import { useTestDatabase } from '../../../support/test-database.js';
import { useDatabases } from '../../../support/postgres-database-helpers.js';

describe('PostgresDatabase transactions', () => {
  const testDb = useTestDatabase();
  const open = useDatabases();

  it('runs withTransaction through its own txManager, whose current() sees the transaction and whose counters move', async () => {
    const db = open(testDb().config()).db;
    const started = async (): Promise<number> =>
      (await db.metrics.txStarted.get()).values.reduce((sum, v) => sum + v.value, 0);
    const before = await started();
    const seen = await db.withTransaction((trx) => Promise.resolve(db.txManager.current() === trx));
    expect(seen).to.equal(true);
    expect(await started()).to.equal(before + 1);
    expect(db.txManager.current()).to.equal(undefined);
  });
});
