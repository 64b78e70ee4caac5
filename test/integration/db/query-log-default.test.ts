import { expect } from 'chai';
import { useDatabases } from '../../support/postgres-database-helpers.js';
import { useTestDatabase } from '../../support/test-database.js';

describe('PostgresDatabase query log (a library user, no service)', () => {
  const database = useTestDatabase();
  const open = useDatabases();

  it('logs each statement at debug without bind values and times it, with no option set', async () => {
    const { db, log, metrics } = open(database().config());
    await db.driver().raw('select ?::text as secret', ['bind-value-kept-out']);
    const lines = log.lines.filter((l) => l.component === 'query');
    expect(lines.map((l) => [l.msg, l.sql])).to.deep.include(['query', 'select $1::text as secret']);
    expect(log.text()).not.to.include('bind-value-kept-out');
    const { values } = await metrics.queryDuration.get();
    const count = values.find((v) => v.metricName === 'db_query_duration_seconds_count')?.value ?? 0;
    expect(count).to.be.at.least(1);
  });

  it('warns for a statement slower than slowQueryThreshold, and logs nothing with queryLog: false', async () => {
    const slow = open(database().config(), { queryLog: { slowQueryThreshold: 50 } });
    await slow.db.driver().raw('select pg_sleep(0.1)');
    expect(slow.log.lines.filter((l) => l.msg === 'slow query')).to.have.length(1);
    const quiet = open(database().config(), { queryLog: false });
    await quiet.db.driver().raw('select 1');
    expect(quiet.log.lines.filter((l) => l.component === 'query')).to.deep.equal([]);
  });
});
