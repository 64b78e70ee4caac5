import { expect } from 'chai';
import { queryOnce } from '../../support/query-once.js';
import { useTestDatabase, adminQuery } from '../../support/test-database.js';

describe('test harness', () => {
  const db = useTestDatabase();

  it('gives each suite a database of its own that accepts connections', async () => {
    const own = await queryOnce<{ name: string }>(db().url, 'select current_database() as name');
    expect(own.rows[0]?.name).to.equal(db().name);
    const { rows } = await adminQuery('select 1 from pg_database where datname = $1', [db().name]);
    expect(rows).to.have.length(1);
  });
});
