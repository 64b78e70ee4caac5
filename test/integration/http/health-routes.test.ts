import { expect } from 'chai';
import { useTestDatabase } from '../../support/test-database.js';
import { startTestService, testConfig, type TestService } from '../../support/service-fixture.js';
import { parsePrometheusText } from '../../support/prometheus-text.js';

describe('HTTP probes and metrics', () => {
  const db = useTestDatabase();
  let svc: TestService;

  before(async () => {
    svc = await startTestService(
      testConfig(db().url, { database: { postgres: { healthCheckInterval: 200 } } }),
    );
  });
  after(async () => {
    await svc?.stop();
  });

  describe('GET /healthz', () => {
    it('answers 200 without touching the database', async () => {
      let queries = 0;
      const count = (): void => void queries++;
      svc.service.db.driver().on('query', count);
      try {
        const res = await fetch(`${svc.url}/healthz`);
        expect(res.status).to.equal(200);
        expect(await res.json()).to.deep.equal({ status: 'ok' });
      } finally {
        svc.service.db.driver().off('query', count);
      }
      expect(queries).to.equal(0);
    });
  });

  describe('GET /readyz', () => {
    it('answers 200 when the last health check is up and the breaker is closed', async () => {
      const res = await fetch(`${svc.url}/readyz`);
      expect(res.status).to.equal(200);
      expect(await res.json()).to.deep.include({
        ready: true,
        database: 'up',
        breaker: 'closed',
        draining: false,
      });
    });
  });

  describe('GET /health', () => {
    it('returns the full health report with pool statistics, breaker state and migration status', async () => {
      const res = await fetch(`${svc.url}/health`);
      expect(res.status).to.equal(200);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).to.include({ status: 'up', breaker: 'closed' });
      expect(body.latencyMs).to.be.a('number');
      expect(body.pool).to.include.keys(
        'maxOpenConnections',
        'inUse',
        'idle',
        'pendingAcquires',
        'waitCount',
      );
      expect(body).to.have.property('migrations');
    });
  });

  describe('GET /metrics', () => {
    it('serves Prometheus text with pool, breaker, health and process metrics', async () => {
      const res = await fetch(`${svc.url}/metrics`);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
      const samples = parsePrometheusText(await res.text());
      const names = new Set(samples.map((s) => s.name));
      for (const name of [
        'db_pool_max_connections',
        'db_pool_in_use_connections',
        'db_pool_idle_connections',
        'db_pool_pending_acquires',
        'db_pool_acquire_wait_seconds_bucket',
        'db_query_duration_seconds_bucket',
        'db_circuit_breaker_state',
        'db_health_check_latency_seconds_count',
        'db_up',
        'process_cpu_user_seconds_total',
        'nodejs_eventloop_lag_seconds',
      ])
        expect(names, name).to.include(name);
      const closed = samples.find(
        (s) => s.name === 'db_circuit_breaker_state' && s.labels.state === 'closed',
      );
      expect(closed?.value).to.equal(1);
      expect(samples.find((s) => s.name === 'db_up')?.value).to.equal(1);
    });
  });

  describe('request ids', () => {
    it('echoes a well-formed x-request-id and puts it on every log line of the request', async () => {
      const res = await fetch(`${svc.url}/nope`, { headers: { 'x-request-id': 'req-abc.123' } });
      expect(res.status).to.equal(404);
      expect(res.headers.get('x-request-id')).to.equal('req-abc.123');
      expect(await res.json()).to.deep.include({
        statusCode: 404,
        code: 'NOT_FOUND',
        requestId: 'req-abc.123',
      });
      const lines = svc.logs.filter((l) => l.reqId === 'req-abc.123');
      expect(lines.map((l) => l.msg)).to.include.members(['incoming request', 'request completed']);
    });

    it('replaces a malformed x-request-id with a generated one', async () => {
      const res = await fetch(`${svc.url}/healthz`, { headers: { 'x-request-id': 'bad id with spaces' } });
      expect(res.headers.get('x-request-id')).to.match(/^[0-9a-f-]{36}$/);
    });
  });
});
