import { expect } from 'chai';
import type { Knex } from 'knex';
import pino from 'pino';
import { CommitUnknownError, TxOptionsError } from '../../../../src/db/errors/errors.js';
import { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { TxManager } from '../../../../src/db/tx/tx-manager.js';
import type { TxOptions } from '../../../../src/db/database.js';
import { captureLogger } from '../../../support/capture-logger.js';
import { useProxiedLedger } from '../../../support/proxied-ledger.js';
import { TcpProxy } from '../../../support/tcp-proxy.js';
import { useTestDatabase } from '../../../support/test-database.js';
import { statementsOf } from '../../../support/statements-sent.js';

const silent = pino({ level: 'silent' });
/** BEGIN of a read-write transaction: the xid (lost-COMMIT resolution) travels in BEGIN's own message. */
const BEGIN_XID = 'BEGIN; select pg_current_xact_id()::text as xid';
/** The same with the transaction-local timeouts of a 5 s deadline (their values depend on the time left). */
const BEGIN_XID_TIMEOUTS =
  /^BEGIN; select pg_current_xact_id\(\)::text as xid, set_config\('statement_timeout', '\d+ms', true\), set_config\('idle_in_transaction_session_timeout', '\d+ms', true\)$/;

describe('TxManager statements per transaction (real PostgreSQL)', () => {
  const db = useTestDatabase();
  let proxy: TcpProxy;
  let pdb: PostgresDatabase;
  let knex: Knex;
  let tm: TxManager;
  const sentBy = (fn: () => Promise<unknown>) => statementsOf(knex, proxy, fn);
  const insert = (trx: Knex.Transaction) => trx('notes').insert({ body: 'x' });
  const INSERT = 'insert into "notes" ("body") values ($1)';

  before(async () => {
    const direct = db().config();
    proxy = await TcpProxy.start({ host: direct.host, port: direct.port });
    pdb = new PostgresDatabase(db().config({ host: '127.0.0.1', port: proxy.port, maxOpenConns: 2 }), silent);
    knex = pdb.driver();
    tm = new TxManager(pdb, silent);
    await knex.raw('create table notes (id serial primary key, body text not null)');
  });

  after(async () => {
    expect(pdb.getConnectionStats().inUse).to.equal(0);
    await pdb.close();
    await proxy.close();
  });

  it('sends BEGIN with the xid in one message, the work and COMMIT (three round trips), and no set_config, for a read-write transaction without a timeout', async () => {
    expect(await sentBy(() => tm.withTransaction(insert))).to.deep.equal([BEGIN_XID, INSERT, 'COMMIT;']);
  });

  it("sets both transaction-local timeouts in BEGIN's message when timeoutMs is set", async () => {
    const sent = await sentBy(() => tm.withTransaction(insert, { timeoutMs: 5_000 }));
    expect(sent).to.have.length(3);
    expect(sent[0]).to.match(BEGIN_XID_TIMEOUTS);
    expect(sent.slice(1)).to.deep.equal([INSERT, 'COMMIT;']);
  });

  it('applies a configured defaultTimeout when the call passes no options, an empty object or only undefined values', async () => {
    const withDefault = new TxManager(pdb, silent, { transactions: { defaultTimeout: 5_000 } });
    const calls: Array<TxOptions | undefined> = [
      undefined,
      {},
      { timeoutMs: undefined, isolationLevel: undefined },
    ];
    for (const opts of calls) {
      const sent = await sentBy(() => withDefault.withTransaction(insert, opts));
      expect(sent, JSON.stringify(opts)).to.have.length(3);
      expect(sent[0], JSON.stringify(opts)).to.match(BEGIN_XID_TIMEOUTS);
    }
  });

  it('sends no xid lookup in a read-only transaction', async () => {
    const sent = await sentBy(() => tm.withReadOnlyTransaction((trx) => trx.raw('select 1')));
    expect(sent).to.deep.equal(['BEGIN TRANSACTION READ ONLY;', 'select 1', 'COMMIT;']);
  });

  it('sends no xid lookup with resolveLostCommit: false, and commits the work', async () => {
    const optedOut = new TxManager(pdb, silent, { transactions: { resolveLostCommit: false } });
    const [before] = await knex('notes').count({ n: '*' });
    const sent = await sentBy(() => optedOut.withTransaction(insert));
    expect(sent).to.deep.equal(['BEGIN;', INSERT, 'COMMIT;']);
    const [after] = await knex('notes').count({ n: '*' });
    expect(Number(after?.n)).to.equal(Number(before?.n) + 1);
  });

  it('rejects invalid options with TxOptionsError as a rejection, never a synchronous throw', async () => {
    let ran = false;
    const call = (opts: unknown) =>
      tm.withTransaction(() => {
        ran = true;
        return Promise.resolve();
      }, opts as TxOptions);
    for (const opts of [5, 'serializable', { timeoutMs: -1 }, { isolationLevel: 'chaos' }]) {
      let pending: Promise<void> | undefined;
      expect(() => (pending = call(opts)), JSON.stringify(opts)).not.to.throw();
      expect(await pending!.catch((e: unknown) => e), JSON.stringify(opts)).to.be.instanceOf(TxOptionsError);
    }
    expect(ran).to.be.false;
  });

  it('joins the ambient transaction when the inner call passes only undefined values', async () => {
    const sent = await sentBy(() =>
      tm.withTransaction(async (outer) => {
        await tm.withTransaction(
          async (inner) => {
            expect(inner).to.equal(outer);
            await insert(inner);
          },
          { timeoutMs: undefined },
        );
      }),
    );
    expect(sent).to.deep.equal([BEGIN_XID, INSERT, 'COMMIT;']);
  });
});

describe('TxManager with resolveLostCommit: false: connection lost while COMMIT is in flight (TCP proxy)', () => {
  const db = useTestDatabase();
  const ledger = useProxiedLedger(db);
  let proxy: TcpProxy;
  let pdb: PostgresDatabase;
  const rowsWithId = (id: number): Promise<number> => ledger().rowsWithId(id);

  before(() => {
    ({ proxy, pdb } = ledger());
  });

  after(async () => {
    expect(pdb.getConnectionStats().inUse).to.equal(0);
    await ledger().close();
  });

  // Whether the server committed depends on whether COMMIT reached it before the cut: that is
  // exactly what the caller is told it cannot know.
  it('rejects with CommitUnknownError without looking the outcome up, and does not re-run the callback', async () => {
    const { logger, lines } = captureLogger();
    const tm = new TxManager(pdb, logger, { transactions: { resolveLostCommit: false } });
    let calls = 0;
    proxy.onNextCommit('cut-after-forward');
    const err = await tm
      .withTransaction(async (trx) => {
        calls++;
        await trx('ledger').insert({ id: 1, note: 'committed, not known' });
      })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(CommitUnknownError);
    expect((err as CommitUnknownError).xid).to.be.undefined;
    expect(calls).to.equal(1);
    expect(lines.filter((l) => String(l.msg).includes('pg_xact_status'))).to.deep.equal([]);
  });

  it('re-runs an idempotent callback after the unknown outcome, and the row exists once', async () => {
    const tm = new TxManager(pdb, silent, { transactions: { resolveLostCommit: false } });
    let calls = 0;
    proxy.onNextCommit('cut-after-forward');
    await tm.withTransaction(
      async (trx) => {
        calls++;
        await trx('ledger').insert({ id: 2, note: 'idempotent' }).onConflict('id').ignore();
      },
      { idempotent: true },
    );
    expect(calls).to.equal(2);
    expect(await rowsWithId(2)).to.equal(1);
  });
});
