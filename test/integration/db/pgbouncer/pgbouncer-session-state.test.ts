import { expect } from 'chai';
import pino from 'pino';
import type { PostgresConfig } from '../../../../src/config/app-config.js';
import { ConnectionError } from '../../../../src/db/errors/errors.js';
import { runStatement } from '../../../../src/db/knex-internals.js';
import { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { TxManager } from '../../../../src/db/tx/tx-manager.js';
import { usePgBouncer, type PgBouncer } from '../../../support/pgbouncer.js';
import { useTestDatabase } from '../../../support/test-database.js';

/*
 * PgBouncer 1.18 (Debian's), pool_mode = transaction: before poolerMode existed the layer could
 * not connect at all (every connection sent `options=-c statement_timeout=...`, refused with
 * 08P01 and reported as "the connection broke; check the network").
 */

const silent = pino({ level: 'silent' });

/** The suite database's config, pointed at PgBouncer. */
function throughBouncer(
  db: ReturnType<ReturnType<typeof useTestDatabase>>,
  bouncer: PgBouncer,
  overrides: Partial<PostgresConfig> = {},
): PostgresConfig {
  return db.config({
    host: bouncer.host,
    port: bouncer.port,
    poolerMode: 'transaction',
    maxRetries: 0,
    ...overrides,
  });
}

describe('PgBouncer transaction mode: connecting and session state', function () {
  const db = useTestDatabase();
  const bouncer = usePgBouncer({ poolSize: 2 });
  const opened: PostgresDatabase[] = [];
  const open = (cfg: PostgresConfig): PostgresDatabase => {
    const pdb = new PostgresDatabase(cfg, silent);
    opened.push(pdb);
    return pdb;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((pdb) => pdb.close()));
  });

  it('reports a refused startup parameter as a permanent ConnectionError naming poolerMode', async () => {
    const pdb = open(throughBouncer(db(), bouncer(), { poolerMode: 'none', maxRetries: 3 }));
    const err = await pdb.connect().catch((e: unknown) => e);
    expect(err).to.be.instanceOf(ConnectionError);
    const { message, attempts } = err as ConnectionError;
    expect(message).to.include('unsupported startup parameter: options');
    expect(message).to.include('poolerMode');
    expect(message).to.include('DB_POOLER_MODE=transaction');
    expect(message).not.to.include('check the network');
    expect(attempts, 'no retry can fix it').to.equal(1);
  });

  it('connects with poolerMode transaction, and runs transactions and plain statements', async () => {
    const pdb = open(throughBouncer(db(), bouncer()));
    await pdb.connect();
    const tm = new TxManager(pdb, silent);
    const inTx = await tm.withTransaction(async (trx) => {
      const { rows } = await trx.raw<{ rows: Array<{ n: number }> }>('select 41 + 1 as n');
      return rows[0]!.n;
    });
    expect(inTx).to.equal(42);
    const { rows } = await pdb.driver().raw<{ rows: Array<{ ok: number }> }>('select 1 as ok');
    expect(rows).to.deep.equal([{ ok: 1 }]);
    expect((await pdb.health()).status).to.equal('up');
  });

  it("puts the limits into a plain knex.transaction()'s BEGIN too, and none outside it", async () => {
    const pdb = open(
      throughBouncer(db(), bouncer(), {
        statementTimeout: 4_000,
        lockTimeout: 3_000,
        idleInTransactionSessionTimeout: 2_000,
      }),
    );
    await pdb.connect();
    const SHOW = `select current_setting('statement_timeout') as st, current_setting('lock_timeout') as lt,
      current_setting('idle_in_transaction_session_timeout') as it`;
    const inside = await pdb
      .driver()
      .transaction(async (trx) => (await trx.raw<{ rows: Array<Record<string, string>> }>(SHOW)).rows[0]!);
    expect(inside).to.deep.equal({ st: '4s', lt: '3s', it: '2s' });
    const outside = (await pdb.driver().raw<{ rows: Array<Record<string, string>> }>(SHOW)).rows[0]!;
    expect(outside).to.deep.equal({ st: '0', lt: '0', it: '0' });
  });

  it('still lets SET TRANSACTION DEFERRABLE follow the BEGIN (SET LOCAL takes no snapshot)', async () => {
    const pdb = open(throughBouncer(db(), bouncer(), { statementTimeout: 4_000 }));
    await pdb.connect();
    const seen = await new TxManager(pdb, silent).withReadOnlyTransaction(
      async (trx) =>
        (
          await trx.raw<{ rows: Array<Record<string, string>> }>(
            `select current_setting('transaction_deferrable') as deferrable,
               current_setting('transaction_isolation') as isolation, current_setting('statement_timeout') as st`,
          )
        ).rows[0]!,
      { isolationLevel: 'serializable', deferrable: true },
    );
    expect(seen).to.deep.equal({ deferrable: 'on', isolation: 'serializable', st: '4s' });
  });

  it('sends named statements unnamed: every server connection holds no prepared statement', async () => {
    // 4 clients on 2 server connections: a named statement prepared on one server connection
    // would be executed on another ("prepared statement ... does not exist", 26000).
    const pdb = open(throughBouncer(db(), bouncer(), { maxOpenConns: 4 }));
    await pdb.connect();
    const knex = pdb.driver();
    const statement = { sql: 'select $1::int + 1 as n', bindings: [1], name: 'pgdl_pgbouncer_named' };
    const results = await Promise.all(
      Array.from({ length: 24 }, () =>
        runStatement(knex, statement).then((r) => (r.rows[0] as { n: number }).n),
      ),
    );
    expect(results).to.deep.equal(Array(24).fill(2));
    const counts = await Promise.all(
      Array.from({ length: 4 }, () =>
        knex.raw<{ rows: Array<{ n: number }> }>('select count(*)::int as n from pg_prepared_statements'),
      ),
    );
    expect(counts.map((r) => r.rows[0]!.n)).to.deep.equal([0, 0, 0, 0]);
  });
});

describe('PgBouncer transaction mode: no session state crosses clients', function () {
  const db = useTestDatabase();
  // One server connection: every client below certainly shares it.
  const bouncer = usePgBouncer({ poolSize: 1 });
  let a: PostgresDatabase;
  let b: PostgresDatabase;
  before(async () => {
    a = new PostgresDatabase(
      throughBouncer(db(), bouncer(), { statementTimeout: 5_000, lockTimeout: 0 }),
      silent,
    );
    b = new PostgresDatabase(
      throughBouncer(db(), bouncer(), {
        statementTimeout: 7_000,
        lockTimeout: 0,
        idleInTransactionSessionTimeout: 0,
      }),
      silent,
    );
    await Promise.all([a.connect(), b.connect()]);
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  type Settings = { pid: number; statement_timeout: string; lock_timeout: string; tenant: string | null };
  const READ_SETTINGS = `select pg_backend_pid() as pid, current_setting('statement_timeout') as statement_timeout,
    current_setting('lock_timeout') as lock_timeout, current_setting('app.tenant', true) as tenant`;

  it("keeps one client's SET LOCAL and timeouts out of another client on the same server connection", async () => {
    const inA = await new TxManager(a, silent).withTransaction(async (trx) => {
      await trx.raw("set local lock_timeout = '1234ms'");
      await trx.raw("select set_config('app.tenant', 'a', true)");
      return (await trx.raw<{ rows: Settings[] }>(READ_SETTINGS)).rows[0]!;
    });
    expect(inA).to.deep.include({ statement_timeout: '5s', lock_timeout: '1234ms', tenant: 'a' });

    const outsideB = (await b.driver().raw<{ rows: Settings[] }>(READ_SETTINGS)).rows[0]!;
    const inB = await new TxManager(b, silent).withTransaction(
      async (trx) => (await trx.raw<{ rows: Settings[] }>(READ_SETTINGS)).rows[0]!,
    );
    expect(outsideB.pid, 'the same server connection').to.equal(inA.pid);
    expect(inB.pid, 'the same server connection').to.equal(inA.pid);
    // Outside a transaction: the server's defaults, nothing of A's transaction.
    expect(outsideB).to.deep.include({ statement_timeout: '0', lock_timeout: '0' });
    expect(outsideB.tenant === null || outsideB.tenant === '').to.equal(true);
    // In B's own transaction: B's limits only.
    expect(inB).to.deep.include({ statement_timeout: '7s', lock_timeout: '0' });
    expect(inB.tenant === null || inB.tenant === '').to.equal(true);
  });

  it('leaves no setting behind after a rolled-back transaction either', async () => {
    const err = await new TxManager(a, silent)
      .withTransaction(
        async (trx) => {
          await trx.raw("select set_config('app.tenant', 'a', true)");
          throw new Error('roll back');
        },
        { retry: false },
      )
      .catch((e: unknown) => e);
    expect((err as Error).message).to.equal('roll back');
    const after = (await b.driver().raw<{ rows: Settings[] }>(READ_SETTINGS)).rows[0]!;
    expect(after.statement_timeout).to.equal('0');
    expect(after.tenant === null || after.tenant === '').to.equal(true);
  });
});
