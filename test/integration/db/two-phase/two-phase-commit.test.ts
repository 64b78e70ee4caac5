import { expect } from 'chai';
import type { Knex } from 'knex';
import { TransactionStateError } from '../../../../src/db/errors/errors.js';
import { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { TwoPhaseCommit } from '../../../../src/db/two-phase/two-phase-commit.js';
import {
  PreparedTransactionsDisabledError,
  TwoPhaseAbortedError,
  TwoPhaseIncompleteError,
  UniqueViolationError,
} from '../../../../src/db/errors/errors.js';
import { startDedicatedServer, type DedicatedServer } from '../../../support/embedded-test-server.js';
import { useDatabases, waitFor } from '../../../support/postgres-database-helpers.js';
import { queryOnce } from '../../../support/query-once.js';
import { postgresConfigFromUrl, useTestDatabase } from '../../../support/test-database.js';
import { captureLogger } from '../../../support/capture-logger.js';
import { withoutOrigin } from '../../../support/without-origin.js';

const SCHEMA = `create table ledger (id int primary key, note text not null);
  create table once (v int constraint once_v unique deferrable initially deferred)`;

/** The rows of `ledger` in the database at `url`. */
async function ledger(url: string): Promise<Array<{ id: number; note: string }>> {
  return (await queryOnce(url, 'select id, note from ledger order by id')).rows as Array<{
    id: number;
    note: string;
  }>;
}

/** Our prepared transactions on the server of `url`, in that database. */
async function preparedGids(url: string): Promise<string[]> {
  const res = await queryOnce(
    url,
    "select gid from pg_prepared_xacts where database = current_database() and gid like 'pgdl2pc%' order by gid",
  );
  return res.rows.map((r) => (r as { gid: string }).gid);
}

/** What `p` rejects with; fails the test when it resolves. */
async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/** The statements knex sends on `db`, as they go out. */
function sentOn(db: PostgresDatabase): string[] {
  const sent: string[] = [];
  db.driver().on('query', (q: { sql: string }) => sent.push(q.sql));
  return sent;
}

describe('TwoPhaseCommit', function () {
  this.timeout(30_000);
  const dbA = useTestDatabase();
  const dbB = useTestDatabase();
  const open = useDatabases();

  before(async () => {
    await Promise.all([queryOnce(dbA().url, SCHEMA), queryOnce(dbB().url, SCHEMA)]);
  });

  afterEach(async () => {
    for (const db of [dbA(), dbB()]) await queryOnce(db.url, 'truncate ledger, once');
    await queryOnce(
      dbA().url,
      "do $$ begin if to_regclass('pgdl_two_phase_decisions') is not null then truncate pgdl_two_phase_decisions; end if; end $$",
    );
  });

  async function participants(): Promise<{ a: PostgresDatabase; b: PostgresDatabase; tpc: TwoPhaseCommit }> {
    const a = open(dbA().config({ maxOpenConns: 3 })).db;
    const b = open(dbB().config({ maxOpenConns: 3 })).db;
    await Promise.all([a.connect(), b.connect()]);
    return { a, b, tpc: new TwoPhaseCommit({ a, b }, { logger: captureLogger().logger, coordinator: a }) };
  }

  describe('run()', () => {
    it('prepares every participant, then commits each, and leaves no prepared transaction', async () => {
      const { a, b, tpc } = await participants();
      const sentA = sentOn(a);
      const sentB = sentOn(b);
      const result = await tpc.run(async (trx) => {
        await trx.a!('ledger').insert({ id: 1, note: 'debit' });
        await trx.b!('ledger').insert({ id: 1, note: 'credit' });
        return 'done';
      });
      expect(result).to.equal('done');
      expect(await ledger(dbA().url)).to.deep.equal([{ id: 1, note: 'debit' }]);
      expect(await ledger(dbB().url)).to.deep.equal([{ id: 1, note: 'credit' }]);
      const prepareB = sentB.find((s) => s.startsWith('PREPARE TRANSACTION'));
      expect(prepareB).to.match(/^PREPARE TRANSACTION 'pgdl2pc_[0-9a-f]{8}_\d+_1'$/);
      const gidB = /'(.*)'/.exec(prepareB!)![1]!;
      // BEGIN carries the xid (lost-COMMIT resolution of a read-write transaction) in its message.
      const BEGIN = 'BEGIN; select pg_current_xact_id()::text as xid';
      const sentPlain = sentB.map(withoutOrigin);
      expect(sentPlain.slice(sentPlain.indexOf(BEGIN))).to.deep.equal([
        BEGIN,
        'insert into "ledger" ("id", "note") values ($1, $2)',
        `PREPARE TRANSACTION '${gidB}'`,
        `COMMIT PREPARED '${gidB}'`,
      ]);
      // a is coordinator too: its decision transaction commits between the PREPAREs and the COMMIT PREPAREDs.
      const gidA = gidB.replace(/_1$/, '_0');
      const order = [`PREPARE TRANSACTION '${gidA}'`, 'COMMIT;', `COMMIT PREPARED '${gidA}'`];
      expect(sentA.filter((s) => order.includes(s))).to.deep.equal(order);
      expect(await preparedGids(dbA().url)).to.deep.equal([]);
      expect(await preparedGids(dbB().url)).to.deep.equal([]);
    });

    it("removes a finished unit's decision record with the next unit's decision, at no round trip of its own", async () => {
      const { a, tpc } = await participants();
      const records = async (): Promise<string[]> =>
        (await queryOnce(dbA().url, 'select xid::text as xid from pgdl_two_phase_decisions')).rows.map(
          (r) => (r as { xid: string }).xid,
        );
      const unit = (id: number) => (trx: Record<string, Knex.Transaction>) =>
        Promise.all([trx.a!('ledger').insert({ id, note: 'a' }), trx.b!('ledger').insert({ id, note: 'b' })]);
      await tpc.run(unit(7));
      const first = await records();
      expect(first).to.have.length(1);
      const sentA = sentOn(a);
      await tpc.run(unit(8));
      const second = await records();
      expect(second).to.have.length(1);
      expect(second).to.not.include(first[0]);
      expect(sentA.filter((s) => /pgdl_two_phase_decisions/.test(s))).to.have.length(1);
      await tpc.recover();
      expect(await records()).to.deep.equal([]);
    });

    it('rolls back every participant and rethrows when the callback throws', async () => {
      const { tpc } = await participants();
      const boom = new Error('boom');
      const failing = tpc.run(async (trx) => {
        await trx.a!('ledger').insert({ id: 2, note: 'debit' });
        await trx.b!('ledger').insert({ id: 2, note: 'credit' });
        throw boom;
      });
      expect(await rejectionOf(failing)).to.equal(boom);
      expect(await ledger(dbA().url)).to.deep.equal([]);
      expect(await ledger(dbB().url)).to.deep.equal([]);
      expect(await preparedGids(dbA().url)).to.deep.equal([]);
    });

    it('rolls back every participant and names the one whose PREPARE failed (a deferred unique violation)', async () => {
      const { tpc } = await participants();
      const err = await rejectionOf(
        tpc.run(async (trx) => {
          await trx.a!('ledger').insert({ id: 3, note: 'debit' });
          await trx.b!('once').insert([{ v: 1 }, { v: 1 }]); // checked only at PREPARE
        }),
      );
      expect(err).to.be.instanceOf(TwoPhaseAbortedError);
      expect(err).to.include({ participant: 'b', step: 'prepare', code: 'TWO_PHASE_ABORTED' });
      expect((err as Error).message).to.include('"b"');
      expect((err as { cause: { code?: string } }).cause.code).to.equal('23505');
      expect(await ledger(dbA().url)).to.deep.equal([]);
      expect(await preparedGids(dbA().url)).to.deep.equal([]);
      expect(await preparedGids(dbB().url)).to.deep.equal([]);
    });

    it('rolls back the prepared participant and destroys the session of one whose PREPARE never reached the server', async () => {
      const { b, tpc } = await participants();
      const refuse = (q: { sql: string }): void => {
        if (q.sql.startsWith('PREPARE TRANSACTION')) throw new Error('injected: PREPARE not sent');
      };
      b.driver().on('query', refuse);
      const err = await rejectionOf(
        tpc.run(async (trx) => {
          await trx.a!('ledger').insert({ id: 10, note: 'debit' });
          await trx.b!('ledger').insert({ id: 10, note: 'credit' });
        }),
      );
      b.driver().off('query', refuse);
      expect(err).to.be.instanceOf(TwoPhaseAbortedError);
      expect(err).to.include({ participant: 'b', step: 'prepare' });
      expect(await preparedGids(dbA().url)).to.deep.equal([]);
      expect(await ledger(dbA().url)).to.deep.equal([]);
      // b's session was still inside its transaction: closed, never pooled again.
      await waitFor(async () => {
        const res = await queryOnce(
          dbB().url,
          "select count(*)::int as n from pg_stat_activity where datname = current_database() and state like 'idle in transaction%'",
        );
        return (res.rows[0] as { n: number }).n === 0;
      });
      await b.withTransaction((trx) => trx('ledger').insert({ id: 11, note: 'later' }));
      expect((await ledger(dbB().url)).map((r) => r.id)).to.deep.equal([11]);
    });

    it("refuses a participant transaction's own commit() and rollback() inside the callback", async () => {
      const { tpc } = await participants();
      let refusal: unknown;
      await tpc.run(async (trx) => {
        await trx.a!('ledger').insert({ id: 4, note: 'debit' });
        refusal = await (trx.a as Knex.Transaction).commit().catch((e: unknown) => e);
        await trx.b!('ledger').insert({ id: 4, note: 'credit' });
      });
      expect(refusal).to.be.instanceOf(TransactionStateError);
      expect((await ledger(dbA().url)).map((r) => r.id)).to.deep.equal([4]);
      expect((await ledger(dbB().url)).map((r) => r.id)).to.deep.equal([4]);
    });

    it('translates a statement error of the callback and rolls back the other participant', async () => {
      const { tpc } = await participants();
      await queryOnce(dbB().url, "insert into ledger values (5, 'existing')");
      const failing = tpc.run(async (trx) => {
        await trx.a!('ledger').insert({ id: 5, note: 'debit' });
        await trx.b!('ledger').insert({ id: 5, note: 'credit' });
      });
      expect(await rejectionOf(failing)).to.be.instanceOf(UniqueViolationError);
      expect(await ledger(dbA().url)).to.deep.equal([]);
    });
  });

  describe('after the decision', () => {
    it('reports a participant that could not be committed as pending, and recover() commits it', async () => {
      const a = open(dbA().config({ maxOpenConns: 3 })).db;
      const b = open(dbB().config({ maxOpenConns: 3 })).db;
      await Promise.all([a.connect(), b.connect()]);
      const tpc = new TwoPhaseCommit(
        { a, b },
        { logger: captureLogger().logger, coordinator: a, commitRetryBaseMs: 1 },
      );
      // Every COMMIT PREPARED on b fails before it is sent (a knex 'query' listener that throws).
      let refused = 0;
      const refuse = (q: { sql: string }): void => {
        if (!q.sql.startsWith('COMMIT PREPARED')) return;
        refused++;
        throw new Error('injected: b unreachable');
      };
      b.driver().on('query', refuse);
      const err = await rejectionOf(
        tpc.run(async (trx) => {
          await trx.a!('ledger').insert({ id: 9, note: 'debit' });
          await trx.b!('ledger').insert({ id: 9, note: 'credit' });
        }),
      );
      b.driver().off('query', refuse);
      expect(err).to.be.instanceOf(TwoPhaseIncompleteError);
      expect(err).to.include({ code: 'TWO_PHASE_INCOMPLETE' });
      expect((err as TwoPhaseIncompleteError).pending).to.deep.equal(['b']);
      expect((err as Error).message).to.include('recover()');
      expect(refused).to.equal(4); // the default attempts
      expect((await ledger(dbA().url)).map((r) => r.id)).to.deep.equal([9]);
      expect(await ledger(dbB().url)).to.deep.equal([]);
      expect(await preparedGids(dbB().url)).to.have.length(1);
      const recovered = await tpc.recover();
      expect(recovered.committed).to.have.length(1);
      expect((await ledger(dbB().url)).map((r) => r.id)).to.deep.equal([9]);
    });
  });

  describe('across two servers', () => {
    let disabled: DedicatedServer | undefined;
    let second: DedicatedServer | undefined;

    before(async function () {
      this.timeout(60_000);
      [disabled, second] = await Promise.all([
        startDedicatedServer(undefined, { maxPreparedTransactions: 0 }),
        startDedicatedServer(),
      ]);
      await queryOnce(second.url(), SCHEMA);
    });

    after(async () => {
      await Promise.all([disabled?.destroy(), second?.destroy()]);
    });

    it('commits on a participant of another server', async () => {
      const a = open(dbA().config()).db;
      const remote = open(postgresConfigFromUrl(new URL(second!.url()))).db;
      await Promise.all([a.connect(), remote.connect()]);
      const tpc = new TwoPhaseCommit({ a, remote }, { logger: captureLogger().logger, coordinator: a });
      await tpc.run(async (trx) => {
        await trx.a!('ledger').insert({ id: 6, note: 'here' });
        await trx.remote!('ledger').insert({ id: 6, note: 'there' });
      });
      expect(await ledger(dbA().url)).to.deep.equal([{ id: 6, note: 'here' }]);
      expect(await ledger(second!.url())).to.deep.equal([{ id: 6, note: 'there' }]);
      expect(await preparedGids(second!.url())).to.deep.equal([]);
    });

    it('fails before opening anything, naming max_prepared_transactions, when a participant has it at 0', async () => {
      const a = open(dbA().config()).db;
      const off = open(postgresConfigFromUrl(new URL(disabled!.url()))).db;
      await Promise.all([a.connect(), off.connect()]);
      const tpc = new TwoPhaseCommit({ a, off }, { logger: captureLogger().logger, coordinator: a });
      let called = false;
      const err = await rejectionOf(
        tpc.run(() => {
          called = true;
          return Promise.resolve();
        }),
      );
      expect(err).to.be.instanceOf(PreparedTransactionsDisabledError);
      expect(err).to.include({ participant: 'off', code: 'PREPARED_TRANSACTIONS_DISABLED' });
      expect((err as Error).message).to.include('max_prepared_transactions');
      expect(called).to.equal(false);
    });
  });
});
