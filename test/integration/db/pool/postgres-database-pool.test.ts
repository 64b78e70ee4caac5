import { setTimeout as delay } from 'node:timers/promises';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { PoolExhaustedError } from '../../../../src/db/errors/errors.js';
import type { PostgresDatabaseOptions } from '../../../../src/db/postgres-database.js';
import type { PostgresConfig } from '../../../../src/config/app-config.js';
import { useTestDatabase } from '../../../support/test-database.js';
import { useDatabases, waitFor } from '../../../support/postgres-database-helpers.js';

const backendPid = async (q: Knex | Knex.Transaction): Promise<number> => {
  const { rows } = await q.raw<{ rows: Array<{ pid: number }> }>('select pg_backend_pid() as pid');
  return rows[0]!.pid;
};

describe('PostgresDatabase pool', () => {
  const testDb = useTestDatabase();
  const open = useDatabases();
  const make = (overrides: Partial<PostgresConfig> = {}, options: PostgresDatabaseOptions = {}) =>
    open(testDb().config(overrides), options).db;

  describe('getConnectionStats()', () => {
    it('counts a connection in use while a transaction is open and none after it ends', async () => {
      const db = make({ maxOpenConns: 3 });
      await db.connect();
      const trx = await db.driver().transaction();
      await trx.raw('select 1');
      expect(db.getConnectionStats()).to.include({ maxOpenConnections: 3, inUse: 1, openConnections: 1 });
      await trx.commit();
      // knex hands the connection back just after COMMIT resolves.
      await waitFor(() => db.getConnectionStats().inUse === 0, 1_000);
      expect(db.getConnectionStats()).to.include({ inUse: 0, idle: 1, openConnections: 1 });
    });

    it('counts acquires that queue for a busy pool in waitCount and waitDurationMs', async () => {
      const db = make({ maxOpenConns: 1 });
      await db.connect();
      const before = db.getConnectionStats();
      const trx = await db.driver().transaction();
      const queued = db
        .driver()
        .raw('select 1')
        .then(() => undefined); // builders run when awaited
      await waitFor(() => db.getConnectionStats().pendingAcquires === 1);
      await delay(50);
      await trx.commit();
      await queued;
      const after = db.getConnectionStats();
      expect(after.waitCount).to.equal(before.waitCount + 1);
      expect(after.waitDurationMs - before.waitDurationMs).to.be.at.least(40);
      expect(after.pendingAcquires).to.equal(0);
    });

    it('does not count an acquire that finds an idle connection as a wait', async () => {
      const db = make({ maxOpenConns: 2 });
      await db.connect();
      await db.driver().raw('select 1');
      await db.driver().raw('select 1');
      expect(db.getConnectionStats().waitCount).to.equal(0);
    });

    it('retires connections after connMaxLifetime (new backend pids) but never one in use', async () => {
      const db = make({ maxOpenConns: 1, maxIdleConns: 1, connMaxLifetime: 400 });
      await db.connect();
      const first = await backendPid(db.driver());
      // A transaction held past the lifetime keeps its connection to the end.
      await db.driver().transaction(async (trx) => {
        const inside = await backendPid(trx);
        await delay(600);
        expect(await backendPid(trx)).to.equal(inside);
      });
      const later = await backendPid(db.driver());
      expect(later).not.to.equal(first);
      expect(db.getConnectionStats().maxLifetimeClosed).to.be.at.least(1);
      expect(db.getConnectionStats().maxIdleTimeClosed).to.equal(0);
    });

    it('closes connections beyond maxIdleConns as they come back, then the rest after connMaxIdleTime', async () => {
      const db = make({ maxOpenConns: 3, maxIdleConns: 1, connMaxIdleTime: 150 });
      await db.connect();
      const trxs = await Promise.all([
        db.driver().transaction(),
        db.driver().transaction(),
        db.driver().transaction(),
      ]);
      await Promise.all(trxs.map((t) => t.commit()));
      await waitFor(() => db.getConnectionStats().inUse === 0, 1_000);
      expect(db.getConnectionStats()).to.include({ idle: 1, maxIdleClosed: 2 });
      await waitFor(() => db.getConnectionStats().idle === 0, 2_000); // no floor: Go keeps none either
      expect(db.getConnectionStats()).to.include({ idle: 0, maxIdleTimeClosed: 1, maxIdleClosed: 2 });
    });
  });

  describe('acquire timeout', () => {
    it('rejects with PoolExhaustedError naming the oldest holder when every connection is in use', async () => {
      const db = make({ maxOpenConns: 1, timeout: 300 }, { captureAcquireStacks: true });
      await db.connect();
      const holding = (async function holdTheOnlyConnection() {
        await db.driver().raw('select pg_sleep(0.6)');
      })();
      await waitFor(() => db.getConnectionStats().inUse === 1);
      try {
        const started = Date.now();
        const err = await db
          .driver()
          .raw('select 1')
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(Date.now() - started).to.be.lessThan(300 + 250);
        expect(err).to.be.instanceOf(PoolExhaustedError);
        const holders = (err as PoolExhaustedError).holders;
        expect(holders).to.have.length(1);
        expect(holders[0]!.heldMs).to.be.at.least(250);
        // A query awaited on a builder starts its acquire from knex's deferred `then`: no
        // application frame is on that stack, so it names the kind of holder (knex's Runner).
        expect(holders[0]!.stack).to.match(/^acquired here\n[\s\S]*Runner\.ensureConnection/);
      } finally {
        await holding;
      }
    });
  });
});
