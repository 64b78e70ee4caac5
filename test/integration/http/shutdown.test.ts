import { expect } from 'chai';
import { useTestDatabase } from '../../support/test-database.js';
import { postChunks } from '../../support/service-process.js';
import { startTestService, testConfig, waitFor } from '../../support/service-fixture.js';

describe('RunningService.stop()', () => {
  const db = useTestDatabase();

  it('turns readiness off at once, lets the in-flight request finish, then refuses connections', async () => {
    const svc = await startTestService(testConfig(db().url));
    const chunks = Array.from({ length: 8 }, (_, i) => `{"email":"drain-${i}@example.com","name":"Drain"}\n`);
    const slow = postChunks(`${svc.url}/users/import`, 'application/x-ndjson', chunks, 100);
    await waitFor(
      () => Promise.resolve(svc.logs.some((l) => l.msg === 'incoming request')),
      5_000,
      'request',
    );

    const stopping = svc.stop();
    expect(svc.service.health.readiness()).to.include({ ready: false, reason: 'draining', draining: true });
    const res = await slow.response;
    expect(res.status, res.body).to.equal(201);
    await stopping;

    const refused = await fetch(`${svc.url}/healthz`).then(
      () => 'answered',
      (err: Error) => (err.cause as { code?: string } | undefined)?.code,
    );
    expect(refused).to.equal('ECONNREFUSED');
    const order = svc.logs
      .map((l) => l.msg)
      .filter((m) => /shutting down|request completed|database closed|shutdown complete/.test(m));
    expect(order).to.deep.equal([
      'shutting down: readiness off, draining requests',
      'request completed',
      'database closed',
      'shutdown complete',
    ]);
  });
});
