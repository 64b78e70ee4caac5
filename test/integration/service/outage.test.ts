import { expect } from 'chai';
import knexFactory from 'knex';
import { migratorConfig } from '../../../src/db/migrations/migrations-config.js';
import { startDedicatedServer, type DedicatedServer } from '../../support/embedded-test-server.js';
import { startTestService, testConfig, waitFor, type TestService } from '../../support/service-fixture.js';

const HEALTH_INTERVAL_MS = 250;
const HALF_OPEN_AFTER_MS = 1_000;

/** The events of knex's (tarn) pool this test listens to. */
interface AcquireEvents {
  on(event: 'acquireRequest', listener: () => void): void;
  removeListener(event: 'acquireRequest', listener: () => void): void;
}

interface Readiness {
  ready: boolean;
  reason?: string;
  database: string;
  breaker: string;
}

describe('Service during a database outage', function () {
  this.timeout(60_000);
  let pg: DedicatedServer;
  let svc: TestService;
  let userId: string;

  before(async () => {
    pg = await startDedicatedServer();
    const knex = knexFactory({ client: 'pg', connection: pg.url(), migrations: migratorConfig() });
    try {
      await knex.migrate.latest();
    } finally {
      await knex.destroy();
    }
    svc = await startTestService(
      testConfig(pg.url(), {
        database: {
          postgres: { healthCheckInterval: HEALTH_INTERVAL_MS, healthCheckTimeout: 500, timeout: 1_000 },
          breaker: { threshold: 3, halfOpenAfter: HALF_OPEN_AFTER_MS },
        },
      }),
    );
    const res = await fetch(`${svc.url}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'outage@example.com', name: 'Outage' }),
    });
    expect(res.status).to.equal(201);
    userId = ((await res.json()) as { id: string }).id;
  });

  after(async () => {
    await svc?.stop();
    await pg?.destroy();
  });

  const readiness = async (): Promise<{ status: number; body: Readiness }> => {
    const res = await fetch(`${svc.url}/readyz`);
    return { status: res.status, body: (await res.json()) as Readiness };
  };

  it('turns unready within two health intervals, opens the breaker, fails fast, and recovers without a restart', async () => {
    expect((await readiness()).status).to.equal(200);

    await pg.server.stop();
    const stoppedAt = Date.now();
    await waitFor(async () => (await readiness()).status === 503, 10_000, '/readyz 503');
    const unreadyAfterMs = Date.now() - stoppedAt;
    // Two intervals, plus one bounded health check and scheduling slack on a loaded 2-core box.
    expect(unreadyAfterMs, 'time to /readyz 503').to.be.below(2 * HEALTH_INTERVAL_MS + 500);
    expect((await readiness()).body).to.include({ ready: false, reason: 'database down', database: 'down' });

    // Requests made while the database is down fail as unavailable; failures (and down health
    // checks) open the breaker.
    const during = await fetch(`${svc.url}/users/${userId}`);
    expect(during.status).to.equal(503);
    expect(during.headers.get('retry-after')).to.match(/^[1-9][0-9]*$/);
    await waitFor(async () => (await readiness()).body.breaker === 'open', 10_000, 'breaker open');

    // While open: 503 + Retry-After without waiting for the pool. Proved by what the requests
    // did, not by a time bound a loaded machine can break: none asked the pool for a connection
    // (so none waited for one or tried to reach the server), none is left waiting.
    const pool = (svc.service.db.driver().client as { pool: AcquireEvents }).pool;
    let acquires = 0;
    const countAcquire = (): void => void acquires++;
    pool.on('acquireRequest', countAcquire);
    let slowestMs = 0;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const res = await fetch(`${svc.url}/users/${userId}`);
      const elapsedMs = performance.now() - t0;
      const body = (await res.json()) as { code: string };
      expect(res.status).to.equal(503);
      expect(body.code).to.equal('CIRCUIT_OPEN');
      expect(Number(res.headers.get('retry-after'))).to.be.within(1, Math.ceil(HALF_OPEN_AFTER_MS / 1000));
      slowestMs = Math.max(slowestMs, elapsedMs);
    }
    pool.removeListener('acquireRequest', countAcquire);
    expect(acquires, 'pool acquires made by requests the open breaker answered').to.equal(0);
    expect(svc.service.db.getConnectionStats().pendingAcquires).to.equal(0);

    const restartedAt = Date.now();
    await pg.server.start();
    await waitFor(async () => (await readiness()).status === 200, 15_000, '/readyz 200 after restart');
    expect((await readiness()).body).to.include({ ready: true, database: 'up', breaker: 'closed' });
    console.log(
      `      /readyz 503 ${unreadyAfterMs} ms after the stop; open-breaker answers in <= ${slowestMs.toFixed(1)} ms; ` +
        `ready again ${Date.now() - restartedAt} ms after the restart began`,
    );
    const after = await fetch(`${svc.url}/users/${userId}`);
    expect(after.status).to.equal(200);

    const transitions = svc.logs.filter((l) => l.component === 'circuit-breaker').map((l) => l.breaker);
    expect(transitions).to.deep.equal(['open', 'half-open', 'closed']);
    const health = svc.logs.filter((l) => l.component === 'health-loop').map((l) => l.msg);
    expect(health).to.deep.equal(['database is up', 'database went down', 'database is back up']);
  });
});
