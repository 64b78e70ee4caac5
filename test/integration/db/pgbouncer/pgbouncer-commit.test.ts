import { expect } from 'chai';
import pino from 'pino';
import { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { TxManager } from '../../../../src/db/tx/tx-manager.js';
import { Metrics } from '../../../../src/observability/metrics.js';
import { metricValue } from '../../../support/metric-value.js';
import { itResolvesLostCommits } from '../../../support/lost-commit-cases.js';
import { usePgBouncer } from '../../../support/pgbouncer.js';
import { queryOnce } from '../../../support/query-once.js';
import { TcpProxy } from '../../../support/tcp-proxy.js';
import { useTestDatabase } from '../../../support/test-database.js';

describe('PgBouncer transaction mode: retries and lost-COMMIT resolution', function () {
  const db = useTestDatabase();
  const bouncer = usePgBouncer({ poolSize: 2 });
  // client -> TcpProxy (cuts COMMIT) -> PgBouncer -> server
  let proxy: TcpProxy;
  let pdb: PostgresDatabase;
  before(async () => {
    await queryOnce(db().url, 'create table ledger (id int primary key, note text)');
    proxy = await TcpProxy.start({ host: bouncer().host, port: bouncer().port });
    pdb = new PostgresDatabase(
      db().config({ host: '127.0.0.1', port: proxy.port, poolerMode: 'transaction', maxOpenConns: 3 }),
      pino({ level: 'silent' }),
    );
    await pdb.connect();
  });
  after(async () => {
    // Unset when the before hook failed (pgbouncer missing): that failure is the one to report.
    const opened = [pdb as PostgresDatabase | undefined, proxy as TcpProxy | undefined];
    for (const resource of opened) await resource?.close();
  });

  const rowsWithId = async (id: number): Promise<number> => {
    const { rows } = await queryOnce<{ n: number }>(
      db().url,
      'select count(*)::int as n from ledger where id = $1',
      [id],
    );
    return rows[0]!.n;
  };

  it('retries a real serialization failure (40001) on a new transaction', async () => {
    await queryOnce(db().url, "insert into ledger values (10, 'before')");
    const metrics = new Metrics();
    const tm = new TxManager(pdb, pino({ level: 'silent' }), { metrics });
    let calls = 0;
    await tm.withTransaction(
      async (trx) => {
        calls++;
        await trx.raw('select note from ledger where id = 10'); // the snapshot is taken
        if (calls === 1) await queryOnce(db().url, "update ledger set note = 'other' where id = 10");
        await trx.raw("update ledger set note = 'mine' where id = 10");
      },
      { isolationLevel: 'repeatable read' },
    );
    expect(calls).to.equal(2);
    expect(await metricValue(metrics.txRetries, { reason: 'serialization' })).to.equal(1);
    const { rows } = await queryOnce<{ note: string }>(db().url, 'select note from ledger where id = 10');
    expect(rows[0]!.note).to.equal('mine');
  });

  itResolvesLostCommits({ pdb: () => pdb, proxy: () => proxy, rowsWithId }, ' through PgBouncer');
});
