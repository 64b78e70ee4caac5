import net from 'node:net';
import { expect } from 'chai';
import type { PostgresConfig } from '../../../src/config/app-config.js';
import { ConnectionError, DatabaseClosedError } from '../../../src/db/errors/errors.js';
import type { PostgresDatabaseOptions } from '../../../src/db/postgres-database.js';
import { useTestDatabase } from '../../support/test-database.js';
import { useDatabases, waitFor } from '../../support/postgres-database-helpers.js';

/** A TCP server that accepts connections and never answers (a stalled server or network). */
async function startBlackhole(): Promise<{ port: number; sockets: Set<net.Socket>; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.resume(); // read and drop what the client sends, so its FIN is seen
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const settle = <T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );

describe('PostgresDatabase lifecycle', () => {
  const testDb = useTestDatabase();
  const open = useDatabases();
  const make = (overrides: Partial<PostgresConfig> = {}, options: PostgresDatabaseOptions = {}) =>
    open(testDb().config(overrides), options).db;

  describe('disconnect()', () => {
    it('waits for an in-flight query, refuses work started after it began, then closes', async () => {
      const db = make({ drainTimeout: 5_000 });
      await db.connect();
      const sleeping = settle(
        db
          .driver()
          .raw('select pg_sleep(1)')
          .then(() => 'slept'),
      );
      await waitFor(() => db.getConnectionStats().inUse === 1);
      const started = Date.now();
      const disconnecting = db.disconnect();
      const refused = await settle(
        db
          .driver()
          .raw('select 1')
          .then(() => 'ran'),
      );
      const refusedTx = await settle(db.withTransaction(() => Promise.resolve('ran')));
      await disconnecting;
      expect(Date.now() - started).to.be.at.least(800);
      expect(await sleeping).to.deep.equal({ ok: true, value: 'slept' });
      expect(refused.ok ? undefined : refused.error).to.be.instanceOf(DatabaseClosedError);
      expect(refusedTx.ok ? undefined : refusedTx.error).to.be.instanceOf(DatabaseClosedError);
      expect(db.getConnectionStats()).to.include({ openConnections: 0, inUse: 0 });
    });

    it('cuts off work still running when drainTimeout runs out', async () => {
      const db = make({ drainTimeout: 200 });
      await db.connect();
      const sleeping = settle(db.driver().raw('select pg_sleep(5)'));
      await waitFor(() => db.getConnectionStats().inUse === 1);
      const started = Date.now();
      await db.disconnect();
      expect(Date.now() - started).to.be.within(150, 200 + 1_000);
      expect((await sleeping).ok).to.equal(false);
    });

    it('is idempotent and safe together with close()', async () => {
      const db = make({ drainTimeout: 5_000 });
      await db.connect();
      const sleeping = settle(db.driver().raw('select pg_sleep(5)'));
      await waitFor(() => db.getConnectionStats().inUse === 1);
      const started = Date.now();
      // close() cuts the drain short; every call resolves.
      await Promise.all([db.disconnect(), db.disconnect(), db.close(), db.close()]);
      await db.disconnect();
      await db.close();
      expect(Date.now() - started).to.be.lessThan(1_500);
      expect((await sleeping).ok).to.equal(false);
    });
  });

  describe('close()', () => {
    it('refuses new work at once and can be called again', async () => {
      const db = make();
      await db.connect();
      await db.close();
      await db.close();
      const refused = await settle(db.driver().raw('select 1'));
      expect(refused.ok ? undefined : refused.error).to.be.instanceOf(DatabaseClosedError);
    });
  });

  describe('health()', () => {
    it('reports up with the short server version, recovery flag, pool stats and breaker state', async () => {
      const db = make({}, { breaker: { state: 'half-open' } });
      await db.connect();
      const report = await db.health();
      expect(report.status).to.equal('up');
      expect(report.server?.version).to.match(/^PostgreSQL \d+(\.\d+)?$/);
      expect(report.server?.inRecovery).to.equal(false);
      expect(report.breaker).to.equal('half-open');
      expect(report.pool.maxOpenConnections).to.equal(5);
      expect(report.error).to.equal(undefined);
      expect(Number.isNaN(Date.parse(report.checkedAt))).to.equal(false);
      expect((await db.metrics.up.get()).values[0]?.value).to.equal(1);
    });

    it('answers within its timeout while every pool connection is busy', async () => {
      const db = make({ maxOpenConns: 2, healthCheckTimeout: 1_000 });
      await db.connect();
      const busy = [
        settle(db.driver().raw('select pg_sleep(1.5)')),
        settle(db.driver().raw('select pg_sleep(1.5)')),
      ];
      await waitFor(() => db.getConnectionStats().inUse === 2);
      const started = Date.now();
      const report = await db.health();
      expect(Date.now() - started).to.be.lessThan(1_000 + 250);
      expect(report.status).to.equal('up');
      expect(report.pool.inUse).to.equal(2);
      await Promise.all(busy);
    });

    it('reports down within its timeout when the server never answers', async () => {
      const hole = await startBlackhole();
      try {
        const db = make({ port: hole.port, healthCheckTimeout: 300 });
        const started = Date.now();
        const report = await db.health();
        expect(Date.now() - started).to.be.lessThan(300 + 250);
        expect(report).to.include({ status: 'down', breaker: 'closed' });
        expect(report.error).to.match(/timed out/);
        await waitFor(() => hole.sockets.size === 0, 1_000);
      } finally {
        await hole.close();
      }
    });

    it('reports down once the database is closed', async () => {
      const db = make();
      await db.connect();
      await db.close();
      const report = await db.health();
      expect(report.status).to.equal('down');
      expect(report.error).to.match(/closed/);
    });
  });

  describe('connect() against a stalled server', () => {
    it('bounds every attempt by timeout and leaves no connection behind', async () => {
      const hole = await startBlackhole();
      try {
        const db = make({ port: hole.port, timeout: 200, maxRetries: 1, retryDelay: 10, maxRetryDelay: 10 });
        const started = Date.now();
        const err = (await db.connect().catch((e: unknown) => e)) as ConnectionError;
        expect(err).to.be.instanceOf(ConnectionError);
        expect(err.attempts).to.equal(2);
        expect(Date.now() - started).to.be.lessThan(2 * 200 + 500);
        await waitFor(() => hole.sockets.size === 0, 1_000);
      } finally {
        await hole.close();
      }
    });
  });
});
