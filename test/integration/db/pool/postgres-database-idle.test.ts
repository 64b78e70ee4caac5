import { setTimeout as delay } from 'node:timers/promises';
import { expect } from 'chai';
import type { Knex } from 'knex';
import type { PostgresConfig } from '../../../../src/config/app-config.js';
import type { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { metricValue } from '../../../support/metric-value.js';
import { useDatabases, waitFor } from '../../../support/postgres-database-helpers.js';
import { adminQuery, useTestDatabase } from '../../../support/test-database.js';

const backendPid = async (q: Knex | Knex.Transaction): Promise<number> => {
  const { rows } = await q.raw<{ rows: Array<{ pid: number }> }>('select pg_backend_pid() as pid');
  return rows[0]!.pid;
};

/** Which of `pids` still have a backend on the server (pg_stat_activity). */
async function liveBackends(pids: readonly number[]): Promise<number[]> {
  const { rows } = await adminQuery(
    'select pid from pg_stat_activity where pid = any($1::int[]) order by pid',
    [[...pids]],
  );
  return rows.map((r) => (r as { pid: number }).pid);
}

/** Opens `n` transactions at once (n connections), then commits them all; returns their backend pids. */
async function useConnections(db: PostgresDatabase, n: number): Promise<number[]> {
  const trxs = await Promise.all(Array.from({ length: n }, () => db.driver().transaction()));
  const pids = await Promise.all(trxs.map((t) => backendPid(t)));
  await Promise.all(trxs.map((t) => t.commit()));
  await waitFor(() => db.getConnectionStats().inUse === 0, 1_000);
  return pids;
}

// Go's database/sql rules for idle connections (SetMaxIdleConns, SetConnMaxIdleTime,
// SetConnMaxLifetime), on tarn's pool: each counter of PoolStats moves, and the connections
// really close on the server.
describe('PostgresDatabase idle connections (Go database/sql rules)', () => {
  const testDb = useTestDatabase();
  const open = useDatabases();
  const make = (overrides: Partial<PostgresConfig>) => open(testDb().config(overrides));

  describe('maxIdleConns', () => {
    it('keeps at most maxIdleConns idle: the surplus closes on release, counted in maxIdleClosed', async () => {
      const { db, metrics } = make({ maxOpenConns: 4, maxIdleConns: 1, connMaxIdleTime: 0 });
      await db.connect();
      const pids = await useConnections(db, 3);
      expect(new Set(pids).size).to.equal(3);
      expect(db.getConnectionStats()).to.include({ openConnections: 1, idle: 1, maxIdleClosed: 2 });
      await waitFor(async () => (await liveBackends(pids)).length === 1);
      expect(await metricValue(metrics.registry.getSingleMetric('db_pool_max_idle_closed')!)).to.equal(2);
      // The one kept is reused.
      expect(pids).to.include(await backendPid(db.driver()));
      expect(db.getConnectionStats()).to.include({
        maxIdleClosed: 2,
        maxIdleTimeClosed: 0,
        maxLifetimeClosed: 0,
      });
    });

    it('keeps no idle connection with maxIdleConns 0, but hands a returned one to a waiting acquire first', async () => {
      const { db } = make({ maxOpenConns: 1, maxIdleConns: 0, connMaxIdleTime: 0 });
      await db.connect(); // the proof query's connection is closed at once
      expect(db.getConnectionStats()).to.include({ openConnections: 0, maxIdleClosed: 1 });
      const trx = await db.driver().transaction();
      const holder = await backendPid(trx);
      const waiting = backendPid(db.driver());
      await waitFor(() => db.getConnectionStats().pendingAcquires === 1);
      await trx.commit();
      expect(await waiting).to.equal(holder); // no churn while someone waits
      await waitFor(() => db.getConnectionStats().openConnections === 0, 1_000);
      expect(db.getConnectionStats().maxIdleClosed).to.equal(2);
      await waitFor(async () => (await liveBackends([holder])).length === 0);
    });
  });

  describe('connMaxIdleTime', () => {
    it('closes every connection idle that long, the last one too (no floor), counted in maxIdleTimeClosed', async () => {
      const { db } = make({ maxOpenConns: 3, maxIdleConns: 3, connMaxIdleTime: 150 });
      await db.connect();
      const pids = await useConnections(db, 2);
      expect(db.getConnectionStats().idle).to.be.at.least(2);
      await waitFor(() => db.getConnectionStats().idle === 0, 2_000);
      const stats = db.getConnectionStats();
      expect(stats.maxIdleTimeClosed).to.be.at.least(2);
      expect(stats).to.include({ openConnections: 0, maxIdleClosed: 0, maxLifetimeClosed: 0 });
      await waitFor(async () => (await liveBackends(pids)).length === 0);
    });

    it('leaves a connection in use alone however long it is held', async () => {
      const { db } = make({ maxOpenConns: 2, maxIdleConns: 2, connMaxIdleTime: 100 });
      await db.connect();
      await db.driver().transaction(async (trx) => {
        const pid = await backendPid(trx);
        await delay(400);
        expect(await backendPid(trx)).to.equal(pid);
      });
    });
  });

  describe('connMaxLifetime', () => {
    it('retires an idle connection past its lifetime without waiting for an acquire, counted in maxLifetimeClosed', async () => {
      const { db } = make({ maxOpenConns: 2, maxIdleConns: 2, connMaxIdleTime: 0, connMaxLifetime: 300 });
      await db.connect();
      const pid = await backendPid(db.driver());
      expect(db.getConnectionStats().idle).to.equal(1);
      // Lifetime 300 ms + up to 30 ms of jitter; the cleaner looks every 150 ms.
      await waitFor(() => db.getConnectionStats().idle === 0, 2_000);
      expect(db.getConnectionStats()).to.include({
        maxLifetimeClosed: 1,
        maxIdleTimeClosed: 0,
        maxIdleClosed: 0,
      });
      await waitFor(async () => (await liveBackends([pid])).length === 0);
    });

    it('retires a connection that comes back past its lifetime as it is released, never while in use', async () => {
      const { db } = make({ maxOpenConns: 1, maxIdleConns: 1, connMaxIdleTime: 0, connMaxLifetime: 200 });
      await db.connect();
      let held = 0;
      await db.driver().transaction(async (trx) => {
        held = await backendPid(trx);
        await delay(400);
        expect(await backendPid(trx)).to.equal(held);
      });
      await waitFor(() => db.getConnectionStats().inUse === 0, 1_000);
      // Closed by the release itself, not by the next pass of the cleaner (every 100 ms).
      expect(db.getConnectionStats()).to.include({ idle: 0, maxLifetimeClosed: 1 });
      expect(await backendPid(db.driver())).not.to.equal(held);
    });
  });

  describe('waits', () => {
    it('counts a queued acquire in db_pool_wait_count_total and its wait in db_pool_wait_duration_seconds_total', async () => {
      const { db, metrics } = make({ maxOpenConns: 1, maxIdleConns: 1 });
      await db.connect();
      const trx = await db.driver().transaction();
      const queued = backendPid(db.driver());
      await waitFor(() => db.getConnectionStats().pendingAcquires === 1);
      await delay(100);
      await trx.commit();
      await queued;
      expect(await metricValue(metrics.poolWaits)).to.equal(1);
      expect(await metricValue(metrics.poolWaitSeconds)).to.be.within(0.09, 1);
      const stats = db.getConnectionStats();
      expect(stats.waitCount).to.equal(1);
      expect(stats.waitDurationMs / 1000).to.be.closeTo(await metricValue(metrics.poolWaitSeconds), 0.002);
      // A checkout that finds an idle connection is no wait.
      await backendPid(db.driver());
      expect(await metricValue(metrics.poolWaits)).to.equal(1);
    });
  });
});
