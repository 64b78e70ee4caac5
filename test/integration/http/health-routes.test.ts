import { expect } from 'chai';
import type { AppConfig } from '../../../src/config/app-config.js';
import type { PoolStats } from '../../../src/db/index.js';
import { useTestDatabase } from '../../support/test-database.js';
import { startTestService, testConfig, type TestService } from '../../support/service-fixture.js';
import { parsePrometheusText } from '../../support/prometheus-text.js';
import { queryOnce } from '../../support/query-once.js';
import { TcpProxy } from '../../support/tcp-proxy.js';

const MIGRATION = '20250101000000_create_users.ts';
const AUDIT_MIGRATION = '20261205000000_create_audit_log.ts';
const MIGRATIONS = [MIGRATION, AUDIT_MIGRATION];

describe('HTTP probes and metrics', () => {
  const db = useTestDatabase();
  // The service reaches its database through a proxy that counts what arrives there.
  let proxy: TcpProxy;
  let cfg: AppConfig;
  let svc: TestService;
  const traffic = () => ({ connections: proxy.connectionsOpened, statements: proxy.statementsSeen });
  /** Runs one statement on the suite's database, past the proxy. */
  const direct = (sql: string, values?: unknown[]) => queryOnce(db().url, sql, values);

  before(async () => {
    const url = new URL(db().url);
    proxy = await TcpProxy.start({ host: url.hostname, port: Number(url.port) });
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    // No reuse of a finished /health report: each test here reads a fresh one.
    cfg = testConfig(url.toString(), {
      server: { healthCacheTtl: 0 },
      database: { postgres: { healthCheckInterval: 200 } },
    });
    svc = await startTestService(cfg);
  });
  after(async () => {
    await svc?.stop();
    await proxy?.close();
  });

  describe('GET /healthz', () => {
    it('answers 200 without touching the database', async () => {
      // The health loop probes the server on its own schedule; paused, whatever reaches the
      // server is the request's doing.
      await svc.service.healthLoop.stop();
      try {
        const before = traffic();
        const res = await fetch(`${svc.url}/healthz`);
        expect(res.status).to.equal(200);
        expect(await res.json()).to.deep.equal({ status: 'ok' });
        // Room for a statement sent without being awaited to arrive.
        await new Promise((r) => setTimeout(r, 100));
        expect(traffic()).to.deep.equal(before);

        // The same measurement sees a route that does use the database (probe connection and pool).
        expect((await fetch(`${svc.url}/health`)).status).to.equal(200);
        const after = traffic();
        expect(after.connections, 'connections opened by /health').to.be.greaterThan(before.connections);
        expect(after.statements, 'statements sent by /health').to.be.greaterThan(before.statements);
      } finally {
        svc.service.healthLoop.start();
      }
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
      const started = performance.now();
      const res = await fetch(`${svc.url}/health`);
      const elapsedMs = performance.now() - started;
      expect(res.status).to.equal(200);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).to.include({ status: 'up', breaker: 'closed' });
      expect(body.latencyMs).to.be.greaterThan(0).and.at.most(elapsedMs);
      const { rows } = await direct("select current_setting('server_version') as v");
      expect(body.server).to.deep.equal({
        version: `PostgreSQL ${(rows[0] as { v: string }).v}`,
        inRecovery: false,
      });
      // Taken while the migration status may hold one pool connection.
      const pool = body.pool as PoolStats;
      expect(pool).to.include({ maxOpenConnections: cfg.database.postgres.maxOpenConns, pendingAcquires: 0 });
      expect(pool.inUse).to.be.within(0, 1);
      expect(pool.openConnections)
        .to.be.at.least(1)
        .and.to.equal(pool.inUse + pool.idle);
      expect(body.migrations).to.deep.equal({
        applied: MIGRATIONS,
        pending: [],
        latest: AUDIT_MIGRATION,
        missingFiles: [],
        upToDate: true,
      });
    });

    it('reports a migration as pending once the migrations table no longer lists it', async () => {
      const { rows } = await direct('delete from knex_migrations where name = $1 returning *', [
        AUDIT_MIGRATION,
      ]);
      expect(rows).to.have.length(1);
      try {
        const res = await fetch(`${svc.url}/health`);
        expect(res.status).to.equal(200);
        expect(((await res.json()) as Record<string, unknown>).migrations).to.deep.equal({
          applied: [MIGRATION],
          pending: [AUDIT_MIGRATION],
          latest: MIGRATION,
          missingFiles: [],
          upToDate: false,
        });
      } finally {
        const row = rows[0] as Record<string, unknown>;
        await direct(
          'insert into knex_migrations (id, name, batch, migration_time) values ($1, $2, $3, $4)',
          [row.id, row.name, row.batch, row.migration_time],
        );
      }
    });

    it('answers 200 with the migration status unavailable, and no error text, when the migrations table cannot be read', async () => {
      await direct('alter table knex_migrations rename column name to renamed');
      try {
        const res = await fetch(`${svc.url}/health`);
        expect(res.status).to.equal(200);
        const text = await res.text();
        const body = JSON.parse(text) as Record<string, unknown>;
        expect(body).to.include({ status: 'up' });
        expect(body.migrations).to.deep.equal({ error: 'migration status unavailable' });
        // The server's message ('column "name" does not exist') stays out of the response.
        expect(text).not.to.match(/does not exist|42703|renamed/);
      } finally {
        await direct('alter table knex_migrations rename column renamed to name');
      }
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
      expect(samples.find((s) => s.name === 'db_pool_max_connections')?.value).to.equal(
        cfg.database.postgres.maxOpenConns,
      );
      // The start-up check and the loop's own (every 200 ms) have been timed by now.
      const checks = samples.filter((s) => s.name === 'db_health_check_latency_seconds_count');
      expect(checks.reduce((n, s) => n + s.value, 0)).to.be.at.least(1);
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
