import { expect } from 'chai';
import pg from 'pg';
import pino from 'pino';
import type { PostgresConfig } from '../../../../src/config/app-config.js';
import { sendCancelRequest } from '../../../../src/db/connection/cancel-request.js';
import { classifyError } from '../../../../src/db/errors/classify-error.js';
import { StatementTimeoutError, TransactionTimeoutError } from '../../../../src/db/errors/errors.js';
import { cancelTargetOf } from '../../../../src/db/knex-internals.js';
import { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { TxManager } from '../../../../src/db/tx/tx-manager.js';
import { usePgBouncer } from '../../../support/pgbouncer.js';
import { waitFor } from '../../../support/postgres-database-helpers.js';
import { queryOnce } from '../../../support/query-once.js';
import { useTestDatabase } from '../../../support/test-database.js';

const silent = pino({ level: 'silent' });

describe('PgBouncer transaction mode: every timeout still holds', function () {
  const db = useTestDatabase();
  const bouncer = usePgBouncer({ poolSize: 2 });
  const opened: PostgresDatabase[] = [];
  const open = async (overrides: Partial<PostgresConfig>): Promise<PostgresDatabase> => {
    const cfg = db().config({
      host: bouncer().host,
      port: bouncer().port,
      poolerMode: 'transaction',
      maxRetries: 0,
      ...overrides,
    });
    const pdb = new PostgresDatabase(cfg, silent);
    opened.push(pdb);
    await pdb.connect();
    return pdb;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((pdb) => pdb.close()));
  });
  before(async () => {
    await queryOnce(db().url, 'create table locked (id int primary key, n int)');
    await queryOnce(db().url, 'insert into locked values (1, 0)');
  });

  /** Backends of the suite database running `sql` (seen past PgBouncer, on the server). */
  const running = async (sql: string): Promise<number> => {
    const { rows } = await queryOnce<{ n: number }>(
      db().url,
      "select count(*)::int as n from pg_stat_activity where datname = current_database() and state = 'active' and query = $1",
      [sql],
    );
    return rows[0]!.n;
  };

  /** Holds the row lock of `locked` id 1 on a direct connection while `fn` runs. */
  const withRowLocked = async <T>(fn: () => Promise<T>): Promise<T> => {
    const holder = new pg.Client({ connectionString: db().url });
    holder.on('error', () => {});
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('select * from locked where id = 1 for update');
      return await fn();
    } finally {
      await holder.query('rollback').catch(() => {});
      await holder.end();
    }
  };

  it('bounds a statement inside a transaction by statementTimeout, on the server (SET LOCAL with BEGIN)', async () => {
    const pdb = await open({ statementTimeout: 300 });
    const tm = new TxManager(pdb, silent);
    let shown: string | undefined;
    const err: unknown = await tm
      .withTransaction(
        async (trx) => {
          shown = (
            await trx.raw<{ rows: Array<{ v: string }> }>("select current_setting('statement_timeout') as v")
          ).rows[0]!.v;
          await trx.raw('select pg_sleep(5)');
        },
        { retry: false },
      )
      .catch((e: unknown) => e);
    expect(shown).to.equal('300ms');
    expect(err).to.be.instanceOf(StatementTimeoutError);
    expect(String((err as Error).cause)).to.include('canceling statement due to statement timeout');
  });

  it('bounds a lock wait inside a transaction by lockTimeout (55P03)', async () => {
    const pdb = await open({ lockTimeout: 200 });
    const tm = new TxManager(pdb, silent);
    const err: unknown = await withRowLocked(() =>
      tm
        .withTransaction((trx) => trx.raw('update locked set n = n + 1 where id = 1'), { retry: false })
        .catch((e: unknown) => e),
    );
    expect(err).to.be.instanceOf(StatementTimeoutError);
    expect(classifyError(err).sqlState).to.equal('55P03');
  });

  it('ends a transaction left idle past idleInTransactionSessionTimeout on the server', async () => {
    const pdb = await open({ idleInTransactionSessionTimeout: 300 });
    const trx = await pdb.beginTx();
    try {
      const { rows } = await trx.raw<{ rows: Array<{ pid: number }> }>('select pg_backend_pid() as pid');
      const pid = rows[0]!.pid;
      await waitFor(async () => {
        const { rows: left } = await queryOnce<{ n: number }>(
          db().url,
          'select count(*)::int as n from pg_stat_activity where pid = $1',
          [pid],
        );
        return left[0]!.n === 0;
      });
      const late: unknown = await trx.raw('select 1').catch((e: unknown) => e);
      expect(late).to.be.instanceOf(Error);
    } finally {
      await trx.rollback().catch(() => {});
    }
  });

  it('bounds a statement outside a transaction by statementTimeout: cancelled on the server by the client', async () => {
    const pdb = await open({ statementTimeout: 300 });
    const err: unknown = await pdb
      .driver()
      .raw('select pg_sleep(5)')
      .catch((e: unknown) => e);
    expect(classifyError(err)).to.deep.include({ kind: 'timeout', sqlState: '57014' });
    expect((err as Error).message).to.include('statementTimeout of 300 ms');
    await waitFor(async () => (await running('select pg_sleep(5)')) === 0);
    // The pool goes on (the cancelled client was retired, PgBouncer kept its server connection).
    const { rows } = await pdb.driver().raw<{ rows: Array<{ ok: number }> }>('select 1 as ok');
    expect(rows).to.deep.equal([{ ok: 1 }]);
  });

  it('bounds a lock wait outside a transaction by statementTimeout (no session lock_timeout)', async () => {
    const pdb = await open({ statementTimeout: 300, lockTimeout: 10_000 });
    const err: unknown = await withRowLocked(() =>
      pdb
        .driver()
        .raw('update locked set n = n + 1 where id = 1')
        .catch((e: unknown) => e),
    );
    expect(classifyError(err)).to.deep.include({ kind: 'timeout', sqlState: '57014' });
  });

  it('forwards a CancelRequest through PgBouncer to the server connection running the statement', async () => {
    const client = new pg.Client({
      host: bouncer().host,
      port: bouncer().port,
      user: db().config().username,
      database: db().name,
    });
    client.on('error', () => {});
    await client.connect();
    try {
      const sleeping = client.query('select pg_sleep(10)').catch((e: unknown) => e);
      await waitFor(async () => (await running('select pg_sleep(10)')) === 1);
      await sendCancelRequest(cancelTargetOf(client)!, 1_000);
      const err: unknown = await sleeping;
      expect((err as { code?: string }).code).to.equal('57014');
      expect((err as Error).message).to.include('user request');
    } finally {
      await client.end();
    }
  });

  it('cancels a statement on the server when timeoutMs expires', async () => {
    const pdb = await open({});
    const tm = new TxManager(pdb, silent);
    const err: unknown = await tm
      .withTransaction((trx) => trx.raw('select pg_sleep(10)'), { timeoutMs: 300, retry: false })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(TransactionTimeoutError);
    await waitFor(async () => (await running('select pg_sleep(10)')) === 0, 2_000);
    expect(await tm.withTransaction(() => Promise.resolve('again'))).to.equal('again');
  });
});
