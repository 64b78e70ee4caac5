import { expect } from 'chai';
import pg from 'pg';
import { useTestDatabase, adminQuery } from '../../support/test-database.js';

describe('test harness', () => {
  const db = useTestDatabase();

  it('gives each suite a database of its own that accepts connections', async () => {
    const client = new pg.Client({ connectionString: db().url });
    await client.connect();
    try {
      const { rows } = await client.query<{ name: string }>('select current_database() as name');
      expect(rows[0]?.name).to.equal(db().name);
    } finally {
      await client.end();
    }
    const { rows } = await adminQuery('select 1 from pg_database where datname = $1', [db().name]);
    expect(rows).to.have.length(1);
  });
});
