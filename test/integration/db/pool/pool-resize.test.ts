import { expect } from 'chai';
import pg from 'pg';
import { ConfigError } from '../../../../src/config/config-error.js';
import type { PostgresConfig } from '../../../../src/config/app-config.js';
import {
  acquirePooled,
  releasePooled,
  tarnPoolOf,
  type DriverConnection,
} from '../../../../src/db/knex-internals.js';
import type { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { metricValue } from '../../../support/metric-value.js';
import { useDatabases, waitFor } from '../../../support/postgres-database-helpers.js';
import { adminQuery, useTestDatabase } from '../../../support/test-database.js';

const LOCK = 4242;
/** Bound on waiting for a condition, ms: generous, for a loaded machine (these are not speed checks). */
const SLOW = 20_000;

/** Backends of this test's pool, by its application_name. */
async function backends(appName: string): Promise<number> {
  const { rows } = await adminQuery(
    'select count(*)::int as n from pg_stat_activity where application_name = $1',
    [appName],
  );
  return (rows[0] as { n: number }).n;
}

describe('PostgresDatabase.resizePool()', () => {
  const testDb = useTestDatabase();
  const open = useDatabases();
  let seq = 0;
  const make = (
    overrides: Partial<PostgresConfig>,
  ): { db: PostgresDatabase; appName: string; metrics: ReturnType<typeof open>['metrics'] } => {
    const appName = `pool-resize-${process.pid}-${++seq}`;
    const { db, metrics } = open(
      testDb().config({ applicationName: appName, timeout: 60_000, ...overrides }),
    );
    return { db, appName, metrics };
  };

  /** A session holding an advisory lock that the load's transactions wait on: they stay busy until it lets go. */
  async function holdLock(): Promise<{ release(): Promise<void> }> {
    const client = new pg.Client({ connectionString: testDb().url });
    await client.connect();
    await client.query('select pg_advisory_lock($1)', [LOCK]);
    return {
      release: async () => {
        await client.query('select pg_advisory_unlock($1)', [LOCK]);
        await client.end();
      },
    };
  }

  it('serves waiting transactions at once when it grows, and retires connections as they are released when it shrinks, with no error to any caller', async function () {
    this.timeout(60_000);
    const { db, appName, metrics } = make({ maxOpenConns: 2, maxIdleConns: 2 });
    await db.connect();
    const lock = await holdLock();
    // 20 transactions, each busy on its connection until the lock is released.
    const load = Array.from({ length: 20 }, (_, i) =>
      db.withTransaction(async (trx) => {
        await trx.raw('select pg_advisory_xact_lock_shared(?)', [LOCK]);
        return i;
      }),
    );
    let results: Array<PromiseSettledResult<number>> = [];
    let unlocked = false;
    try {
      await waitFor(
        () => db.getConnectionStats().inUse === 2 && db.getConnectionStats().pendingAcquires === 18,
        SLOW,
      );

      db.resizePool({ maxOpenConns: 6 });
      // Served by the resize alone: nothing was released (every connection is still on the lock).
      await waitFor(() => db.getConnectionStats().inUse === 6, SLOW);
      expect(db.getConnectionStats()).to.include({ maxOpenConnections: 6, inUse: 6, pendingAcquires: 14 });
      expect(
        await metricValue(metrics.registry.getSingleMetric('db_pool_max_connections') as never),
      ).to.equal(6);
      expect(
        await metricValue(metrics.registry.getSingleMetric('db_pool_in_use_connections') as never),
      ).to.equal(6);
      await waitFor(async () => (await backends(appName)) === 6, SLOW);

      const pool = tarnPoolOf(db.driver())!;
      const inUseAtHandOut: number[] = [];
      pool.on('acquireSuccess', () => inUseAtHandOut.push(pool.numUsed()));
      db.resizePool({ maxOpenConns: 1 });
      // The busy ones are not touched.
      expect(db.getConnectionStats()).to.include({ maxOpenConnections: 1, inUse: 6 });
      expect(await backends(appName)).to.equal(6);
      expect(
        await metricValue(metrics.registry.getSingleMetric('db_pool_max_connections') as never),
      ).to.equal(1);

      unlocked = true;
      await lock.release();
      results = await Promise.allSettled(load);
      // Every waiter got its connection only once the pool was down to its new size.
      expect(inUseAtHandOut).to.have.length(14);
      expect(Math.max(...inUseAtHandOut)).to.equal(1);
    } finally {
      if (!unlocked) await lock.release();
      results = results.length > 0 ? results : await Promise.allSettled(load);
    }
    expect(results.filter((r) => r.status === 'rejected')).to.deep.equal([]);
    expect(results.map((r) => (r as PromiseFulfilledResult<number>).value)).to.have.members([
      ...Array(20).keys(),
    ]);
    await waitFor(() => db.getConnectionStats().openConnections === 1, SLOW);
    expect(db.getConnectionStats()).to.include({
      maxOpenConnections: 1,
      openConnections: 1,
      inUse: 0,
      idle: 1,
    });
    await waitFor(async () => (await backends(appName)) === 1, SLOW);
    expect(await metricValue(metrics.registry.getSingleMetric('db_pool_open_connections') as never)).to.equal(
      1,
    );
  });

  it('closes idle connections beyond the new size at once, and enforces a new maxIdleConns on the idle ones', async () => {
    const { db, appName } = make({ maxOpenConns: 4, maxIdleConns: 4 });
    await db.connect();
    const knex = db.driver();
    const held: DriverConnection[] = await Promise.all([1, 2, 3, 4].map(() => acquirePooled(knex)));
    for (const c of held) await releasePooled(knex, c);
    expect(db.getConnectionStats()).to.include({ openConnections: 4, idle: 4 });

    db.resizePool({ maxOpenConns: 3 });
    // maxIdleConns followed maxOpenConns down (Go's SetMaxOpenConns does the same).
    expect(db.getConnectionStats()).to.include({ maxOpenConnections: 3, openConnections: 3, idle: 3 });
    // Two busy, one idle: shrinking to 2 closes the idle one, though maxIdleConns (2) would keep it.
    const busy = await Promise.all([1, 2].map(() => acquirePooled(knex)));
    db.resizePool({ maxOpenConns: 2, maxIdleConns: 2 });
    expect(db.getConnectionStats()).to.include({
      maxOpenConnections: 2,
      openConnections: 2,
      inUse: 2,
      idle: 0,
    });
    for (const c of busy) await releasePooled(knex, c);
    db.resizePool({ maxOpenConns: 3, maxIdleConns: 3 });
    expect(db.getConnectionStats()).to.include({ openConnections: 2, idle: 2 });
    db.resizePool({ maxIdleConns: 1 });
    expect(db.getConnectionStats()).to.include({ maxOpenConnections: 3, openConnections: 1, idle: 1 });
    await waitFor(async () => (await backends(appName)) === 1, SLOW);
    // Still three at once.
    const again = await Promise.all([1, 2, 3].map(() => acquirePooled(knex)));
    expect(db.getConnectionStats()).to.include({ inUse: 3, pendingAcquires: 0 });
    for (const c of again) await releasePooled(knex, c);
    expect(db.getConnectionStats()).to.include({ openConnections: 1, idle: 1 });
  });

  it('keeps the new size across close() and connect()', async () => {
    const { db } = make({ maxOpenConns: 5 });
    await db.connect();
    db.resizePool({ maxOpenConns: 2 });
    await db.close();
    await db.connect();
    const knex = db.driver();
    const held = await Promise.all([1, 2].map(() => acquirePooled(knex)));
    const third = acquirePooled(knex);
    await waitFor(() => db.getConnectionStats().pendingAcquires === 1, SLOW);
    // tarn starts a connection for a waiter in the same step as it queues it, when its size allows one.
    expect(tarnPoolOf(knex)!.numPendingCreates()).to.equal(0);
    expect(db.getConnectionStats()).to.include({ maxOpenConnections: 2, inUse: 2, openConnections: 2 });
    await releasePooled(knex, held[0]);
    await releasePooled(knex, await third);
    await releasePooled(knex, held[1]);
  });

  it('refuses an invalid size with a ConfigError naming the value, and changes nothing', async () => {
    const { db } = make({ maxOpenConns: 3, maxIdleConns: 2 });
    await db.connect();
    const cases: Array<[Parameters<PostgresDatabase['resizePool']>[0], RegExp]> = [
      [{ maxOpenConns: 0 }, /maxOpenConns must be a whole number >= 1 \(got 0\)/],
      [{ maxOpenConns: 2.5 }, /maxOpenConns must be a whole number >= 1 \(got 2.5\)/],
      [{ maxIdleConns: -1 }, /maxIdleConns must be a whole number >= 0 \(got -1\)/],
      [{ maxIdleConns: 4 }, /maxIdleConns \(4\) must not exceed maxOpenConns \(3\)/],
      [{ maxOpenConns: 2, maxIdleConns: 3 }, /maxIdleConns \(3\) must not exceed maxOpenConns \(2\)/],
    ];
    for (const [opts, message] of cases) {
      expect(() => db.resizePool(opts), JSON.stringify(opts)).to.throw(ConfigError, message);
      expect(db.getConnectionStats().maxOpenConnections).to.equal(3);
    }
  });
});
