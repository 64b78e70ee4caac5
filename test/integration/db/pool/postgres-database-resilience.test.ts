import { expect } from 'chai';
import type { PostgresConfig } from '../../../../src/config/app-config.js';
import type { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { WARN, type CapturedLogger } from '../../../support/capture-logger.js';
import { startDedicatedServer, type DedicatedServer } from '../../../support/embedded-test-server.js';
import { queryOnce } from '../../../support/query-once.js';
import { postgresConfigFromUrl } from '../../../support/test-database.js';
import { connectAttempts, useDatabases, waitFor } from '../../../support/postgres-database-helpers.js';

describe('PostgresDatabase resilience (dedicated server)', function () {
  this.timeout(60_000);
  let ds: DedicatedServer;
  const open = useDatabases();
  const make = (overrides: Partial<PostgresConfig> = {}) =>
    open({ ...postgresConfigFromUrl(new URL(ds.url())), ...overrides });
  const pid = async (db: PostgresDatabase): Promise<number> => {
    const { rows } = await db
      .driver()
      .raw<{ rows: Array<{ pid: number }> }>('select pg_backend_pid() as pid');
    return rows[0]!.pid;
  };
  /** Opens `n` pool connections at once and returns them to the pool idle; their backend pids. */
  const fillPool = async (db: PostgresDatabase, n: number): Promise<number[]> => {
    const trxs = await Promise.all(Array.from({ length: n }, () => db.driver().transaction()));
    const pids = await Promise.all(
      trxs.map(async (t) => {
        const { rows } = await t.raw<{ rows: Array<{ pid: number }> }>('select pg_backend_pid() as pid');
        return rows[0]!.pid;
      }),
    );
    await Promise.all(trxs.map((t) => t.commit()));
    await waitFor(() => db.getConnectionStats().idle === n, 1_000);
    return pids;
  };
  const brokenWarnings = (log: CapturedLogger): number =>
    log.lines.filter((l) => l.level === WARN && /connection broke/.test(l.msg)).length;

  before(async () => {
    ds = await startDedicatedServer();
  });
  after(async () => {
    await ds?.destroy();
  });

  it('connects after retries when the server starts only after a delay', async () => {
    await ds.server.stop();
    const { db, metrics } = make({ maxRetries: 40, retryDelay: 100, maxRetryDelay: 300 });
    const starting = new Promise<void>((resolve, reject) => {
      setTimeout(() => {
        ds.server.start().then(resolve, reject);
      }, 1_000);
    });
    const started = Date.now();
    try {
      await db.connect();
    } finally {
      await starting;
    }
    expect(Date.now() - started).to.be.at.least(900);
    expect(await connectAttempts(metrics, 'retry')).to.be.at.least(1);
    expect(await connectAttempts(metrics, 'success')).to.equal(1);
  });

  it('survives a server restart with idle pooled connections: health goes down then up, queries work again', async () => {
    const { db, log } = make({ maxOpenConns: 3, maxIdleConns: 3, healthCheckTimeout: 500 });
    await db.connect();
    const before = await fillPool(db, 3);
    await ds.server.stop();
    const down = await db.health();
    expect(down.status).to.equal('down');
    expect(down.error).not.to.include(db.config.password);
    await ds.server.start();
    expect((await db.health()).status).to.equal('up');
    // Every idle connection was told (57P01) or saw its socket close, was logged and is dropped.
    await waitFor(() => brokenWarnings(log) === 3, 2_000);
    for (let i = 0; i < 5; i++) expect(before).not.to.include(await pid(db));
    expect(log.text()).not.to.include(db.config.password);
  });

  it('replaces every pooled connection killed with pg_terminate_backend without crashing', async () => {
    const { db, log } = make({ maxOpenConns: 3, maxIdleConns: 3 });
    await db.connect();
    const victims = await fillPool(db, 3);
    const { rows } = await queryOnce<{ killed: boolean }>(
      ds.url(),
      'select pg_terminate_backend(pid) as killed from unnest($1::int[]) as pid',
      [victims],
    );
    expect(rows.every((r) => r.killed)).to.equal(true);
    await waitFor(() => brokenWarnings(log) === 3, 2_000);
    const next = await pid(db);
    expect(victims).not.to.include(next);
    await db.withTransaction(async (trx) => {
      await trx.raw('select 1');
    });
    expect(db.getConnectionStats().openConnections).to.be.within(1, 3);
  });
});
