import { setTimeout as delay } from 'node:timers/promises';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import pino from 'pino';
import type { Database } from '../../../../src/db/database.js';
import {
  StatementTimeoutError,
  TransactionStateError,
  TransactionTimeoutError,
} from '../../../../src/db/errors/errors.js';
import { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { TxManager } from '../../../../src/db/tx/tx-manager.js';
import { adminQuery, useTestDatabase } from '../../../support/test-database.js';

const silent = pino({ level: 'silent' });

/** A GUC value as SHOW prints it ('5100ms', '6s', '1min') in milliseconds. */
function showMs(value: string): number {
  const m = /^(\d+)(ms|s|min)?$/.exec(value);
  if (!m) throw new Error(`not a duration: ${value}`);
  return Number(m[1]) * ({ ms: 1, s: 1000, min: 60_000 } as Record<string, number>)[m[2] ?? 'ms']!;
}
const numUsed = (knex: Knex): number => (knex.client as { pool: { numUsed(): number } }).pool.numUsed();

/** Backends of this database still running `sql` (seen from another connection). */
async function running(dbName: string, sql: string): Promise<number> {
  const { rows } = await adminQuery(
    "select count(*)::int as n from pg_stat_activity where datname = $1 and state = 'active' and query = $2",
    [dbName, sql],
  );
  return (rows[0] as { n: number }).n;
}

describe('TxManager timeouts (real PostgreSQL)', () => {
  const db = useTestDatabase();
  let pdb: PostgresDatabase;
  let knex: Knex;
  let tm: TxManager;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  before(async () => {
    pdb = new PostgresDatabase(db().config({ maxOpenConns: 1 }), silent);
    knex = pdb.driver();
    tm = new TxManager(pdb, silent);
    await knex.raw('create table slots (id int primary key, holder text)');
    await knex('slots').insert({ id: 1, holder: 'nobody' });
    process.on('unhandledRejection', onUnhandled);
  });

  afterEach(() => {
    expect(unhandled).to.deep.equal([]);
  });

  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    expect(numUsed(knex)).to.equal(0);
    expect(pdb.getConnectionStats().inUse).to.equal(0);
    await pdb.close();
  });

  it('rejects withTimeout(300, pg_sleep(10)) with TransactionTimeoutError in under 550 ms and cancels the sleep on the server', async () => {
    const started = performance.now();
    const err: unknown = await tm
      .withTimeout(300, (trx) => trx.raw('select pg_sleep(10)'))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    const elapsed = performance.now() - started;
    expect(err).to.be.instanceOf(TransactionTimeoutError);
    expect((err as TransactionTimeoutError).timeoutMs).to.equal(300);
    expect(elapsed).to.be.lessThan(550);
    let sleeping = await running(db().name, 'select pg_sleep(10)');
    for (const until = performance.now() + 1000; sleeping > 0 && performance.now() < until;) {
      await delay(20);
      sleeping = await running(db().name, 'select pg_sleep(10)');
    }
    expect(sleeping).to.equal(0);
    expect(numUsed(knex)).to.equal(0);
    expect(pdb.getConnectionStats().inUse).to.equal(0);
  });

  it('applies timeoutMs given to PostgresDatabase.withTransaction the same way', async () => {
    const started = performance.now();
    const err: unknown = await pdb
      .withTransaction((trx) => trx.raw('select pg_sleep(10)'), { timeoutMs: 200 })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).to.be.instanceOf(TransactionTimeoutError);
    expect(performance.now() - started).to.be.lessThan(450);
  });

  it('returns the connection healthy: the next transaction on the same single connection runs, with no local settings left', async () => {
    const before = await knex.raw<{ rows: Array<{ statement_timeout: string }> }>('show statement_timeout');
    const timedOut: unknown = await tm
      .withTimeout(200, (trx) => trx.raw('select pg_sleep(5)'))
      .catch((e: unknown) => e);
    expect(timedOut).to.be.instanceOf(TransactionTimeoutError);
    const inside = await tm.withTimeout(5_000, async (trx) => {
      const st = await trx.raw<{ rows: Array<{ statement_timeout: string }> }>('show statement_timeout');
      const idle = await trx.raw<{ rows: Array<{ idle_in_transaction_session_timeout: string }> }>(
        'show idle_in_transaction_session_timeout',
      );
      return { st: st.rows[0]!.statement_timeout, idle: idle.rows[0]!.idle_in_transaction_session_timeout };
    });
    // Transaction-local values from the time left (about 5 s + slack), never the session's.
    expect(showMs(inside.st)).to.be.within(4_000, 5_200);
    expect(showMs(inside.idle)).to.be.within(5_000, 6_100);
    const after = await knex.raw<{ rows: Array<{ statement_timeout: string }> }>('show statement_timeout');
    expect(after.rows[0]!.statement_timeout).to.equal(before.rows[0]!.statement_timeout);
  });

  it('rolls back at the deadline a callback stalled on work that is not SQL, releasing its locks', async () => {
    const started = performance.now();
    const err = await tm
      .withTimeout(300, async (trx) => {
        await trx('slots').where({ id: 1 }).update({ holder: 'staller' });
        await delay(3_000);
      })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(TransactionTimeoutError);
    expect(performance.now() - started).to.be.lessThan(550);
    // The row lock is gone: another transaction takes it at once.
    await tm.withTransaction(async (trx) => {
      await trx.raw("select set_config('lock_timeout', '200ms', true)");
      await trx('slots').where({ id: 1 }).update({ holder: 'next' });
    });
    expect(await knex('slots').where({ id: 1 }).first()).to.deep.equal({ id: 1, holder: 'next' });
  });

  it('refuses every statement the callback issues after the deadline, with a typed error and no unhandled rejection', async () => {
    let late: unknown;
    let lateDone: () => void = () => {};
    const lateSettled = new Promise<void>((resolve) => (lateDone = resolve));
    const err = await tm
      .withTimeout(200, async (trx) => {
        try {
          await trx.raw('select pg_sleep(5)');
        } catch {
          // A callback that swallows the cancellation and carries on (prisma#17245).
        }
        try {
          await trx('slots').insert({ id: 2, holder: 'too late' });
        } catch (e) {
          late = e;
        }
        lateDone();
      })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(TransactionTimeoutError);
    await lateSettled;
    expect(late).to.be.instanceOf(TransactionStateError);
    expect(await knex('slots').where({ id: 2 }).first()).to.equal(undefined);
  });

  it('bounds the wait for a pool connection by the same deadline', async () => {
    const holder = await tm.beginTx();
    try {
      const started = performance.now();
      const err: unknown = await tm
        .withTimeout(200, (trx) => trx.raw('select 1'))
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).to.be.instanceOf(TransactionTimeoutError);
      expect(performance.now() - started).to.be.within(150, 450);
    } finally {
      await holder.rollback();
    }
  });

  describe("with pg's client-side query_timeout (the connection went back to the pool mid-transaction)", () => {
    let raw: Knex;
    let facade: Database;

    before(() => {
      const cfg = db().config();
      raw = knexFactory({
        client: 'pg',
        connection: {
          host: cfg.host,
          port: cfg.port,
          database: cfg.name,
          user: cfg.username,
          password: cfg.password,
          query_timeout: 200,
        },
        pool: { min: 0, max: 1 },
      });
      facade = {
        driver: () => raw,
        getConnectionStats: () => pdb.getConnectionStats(),
      } as unknown as Database;
    });

    after(async () => {
      expect(numUsed(raw)).to.equal(0);
      await raw.destroy();
    });

    it('never lets the next transaction on that connection commit the failed work', async () => {
      const manager = new TxManager(facade, silent);
      const err = await manager
        .withTransaction(async (trx) => {
          await trx('slots').insert({ id: 10, holder: 'failed work' });
          await trx.raw('select pg_sleep(1)');
        })
        .catch((e: unknown) => e);
      expect(err).to.be.instanceOf(StatementTimeoutError);
      await manager.withTransaction(async (trx) => {
        await trx('slots').insert({ id: 11, holder: 'next transaction' });
      });
      expect(await knex('slots').whereIn('id', [10, 11]).orderBy('id').pluck('id')).to.deep.equal([11]);
    });
  });
});
