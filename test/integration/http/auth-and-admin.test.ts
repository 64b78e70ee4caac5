import { expect } from 'chai';
import { startService } from '../../../src/app.js';
import { ConfigError, loadConfig } from '../../../src/config/index.js';
import { captureLogger } from '../../support/capture-logger.js';
import { freePort } from '../../support/free-port.js';
import { queryOnce } from '../../support/query-once.js';
import { createJwtIssuer, type JwtIssuer } from '../../support/jwt-issuer.js';
import { startTestService, testConfig, type TestService } from '../../support/service-fixture.js';
import { useTestDatabase } from '../../support/test-database.js';

const JWT_DEFAULTS = { jwksUrl: '', issuer: '', audience: 'users-api', clockTolerance: 5_000 };

describe('Service authentication and the admin listener', () => {
  const db = useTestDatabase();

  describe('in mode jwt with an admin port', () => {
    let issuer: JwtIssuer;
    let svc: TestService;
    before(async () => {
      issuer = await createJwtIssuer('ES256');
      const cfg = testConfig(db().url, {
        server: {
          auth: { mode: 'jwt', jwt: { ...JWT_DEFAULTS, publicKey: issuer.publicKeyPem } },
          admin: { port: await freePort(), host: '127.0.0.1' },
        },
      });
      svc = await startTestService(cfg);
    });
    after(() => svc?.stop());

    const token = (scope: string, sub = 'client-1') => issuer.sign({ scope, sub, aud: 'users-api' });
    const call = async (method: string, path: string, scope?: string, body?: unknown, headers = {}) =>
      fetch(`${svc.url}${path}`, {
        method,
        headers: {
          ...(scope !== undefined && { authorization: `Bearer ${await token(scope)}` }),
          ...(body !== undefined && { 'content-type': 'application/json' }),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });

    it('declares a scope or public on every route it registers', () => {
      expect(svc.logs.filter((l) => String(l.msg).includes('declares no scope'))).to.deep.equal([]);
    });

    it('keeps /healthz, /readyz and the minimal /health open', async () => {
      for (const path of ['/healthz', '/readyz'])
        expect((await call('GET', path)).status, path).to.equal(200);
      const health = await call('GET', '/health');
      expect(health.status).to.equal(200);
      expect(await health.json()).to.deep.equal({ status: 'up' });
    });

    it('serves /metrics and the detailed /health on the admin listener only', async () => {
      expect(svc.service.adminUrl).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
      const metrics = await fetch(`${svc.service.adminUrl}/metrics`);
      expect(metrics.status).to.equal(200);
      expect(await metrics.text()).to.include('# TYPE');
      const health = (await (await fetch(`${svc.service.adminUrl}/health`)).json()) as Record<
        string,
        unknown
      >;
      expect(health).to.include({ status: 'up' });
      expect(health).to.have.property('pool');
      // On the public port /metrics does not exist: 401 without a token, 404 with one.
      expect((await call('GET', '/metrics')).status).to.equal(401);
      expect((await call('GET', '/metrics', 'users:admin')).status).to.equal(404);
    });

    it('records the token subject and the request id of a write in the audit trail', async () => {
      const res = await fetch(`${svc.url}/users`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await token('users:write', 'writer-9')}`,
          'content-type': 'application/json',
          'x-request-id': 'audit-req-1',
        },
        body: JSON.stringify({ email: `audited-${Date.now()}@example.com`, name: 'Audited' }),
      });
      expect(res.status).to.equal(201);
      const { id } = (await res.json()) as { id: string };
      const { rows } = await queryOnce(
        db().url,
        'select actor, action, entity_id, request_id from audit_log where request_id = $1',
        ['audit-req-1'],
      );
      expect(rows).to.deep.equal([
        { actor: 'writer-9', action: 'create', entity_id: id, request_id: 'audit-req-1' },
      ]);
    });

    it('answers 401 without a token on every users route', async () => {
      for (const [method, path] of [
        ['GET', '/users'],
        ['GET', '/users/1'],
        ['POST', '/users'],
        ['PATCH', '/users/1'],
        ['DELETE', '/users/1'],
        ['POST', '/users/import'],
      ] as const) {
        const res = await call(method, path);
        expect(res.status, `${method} ${path}`).to.equal(401);
        expect(res.headers.get('www-authenticate'), `${method} ${path}`).to.equal('Bearer realm="api"');
      }
    });

    it('enforces users:read on GET, users:write on POST and PATCH, users:admin on DELETE and import', async () => {
      const created = await call('POST', '/users', 'users:write', {
        email: `scoped-${Date.now()}@example.com`,
        name: 'S',
      });
      expect(created.status).to.equal(201);
      const { id } = (await created.json()) as { id: string };
      const cases: Array<[string, string, string, unknown, Record<string, string>, number]> = [
        ['GET', '/users', 'users:read', undefined, {}, 200],
        ['GET', `/users/${id}`, 'users:read', undefined, {}, 200],
        ['POST', '/users', 'users:write', { email: `w-${Date.now()}@example.com`, name: 'W' }, {}, 201],
        ['PATCH', `/users/${id}`, 'users:write', { name: 'T' }, { 'if-match': '"1"' }, 200],
        ['POST', '/users/import', 'users:admin', undefined, { 'content-type': 'application/x-ndjson' }, 201],
        ['DELETE', `/users/${id}`, 'users:admin', undefined, {}, 204],
      ];
      for (const [method, path, scope, body, headers, status] of cases) {
        const others = ['users:read', 'users:write', 'users:admin'].filter((s) => s !== scope).join(' ');
        const refused = await call(method, path, others, body, headers);
        expect(refused.status, `${method} ${path} without ${scope}`).to.equal(403);
        expect(await refused.json()).to.include({ code: 'INSUFFICIENT_SCOPE' });
        const allowed =
          method === 'POST' && path === '/users/import'
            ? await fetch(`${svc.url}${path}`, {
                method,
                headers: { authorization: `Bearer ${await token(scope)}`, ...headers },
                body: `{"email":"imp-${Date.now()}@example.com","name":"I"}\n`,
              })
            : await call(method, path, scope, body, headers);
        expect(allowed.status, `${method} ${path} with ${scope}: ${await allowed.clone().text()}`).to.equal(
          status,
        );
      }
    });
  });

  it('refuses to start in production with mode jwt and no key, naming the settings, before touching the database', async () => {
    const cfg = loadConfig({
      env: { APP_ENV: 'production', DB_HOST: 'db.invalid', DB_PASSWORD: 'pw' },
      envFile: false,
      configDir: 'config',
    });
    expect(cfg.server.auth.mode).to.equal('jwt');
    const err = await startService(cfg, { logger: captureLogger().logger }).then(
      () => expect.fail('started without a key'),
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ConfigError);
    const issue = (err as ConfigError).issues.join('\n');
    expect(issue).to.include('SERVER_AUTH_JWT_PUBLIC_KEY').and.to.include('SERVER_AUTH_JWT_JWKS_URL');
    // Every start-up problem at once: the missing cursor key too.
    expect(issue).to.include('SERVER_CURSOR_SECRET');
  });

  it('starts in production with mode none set explicitly, says so at warn, and closes the admin listener on stop', async () => {
    const cfg = testConfig(db().url, {
      server: {
        auth: { mode: 'none', jwt: { ...JWT_DEFAULTS, publicKey: '' } },
        admin: { port: await freePort(), host: '127.0.0.1' },
      },
    });
    // Production also needs the cursor key (every replica shares it).
    const svc = await startTestService({
      ...cfg,
      profile: 'production',
      server: { ...cfg.server, cursorSecret: 'c'.repeat(32) },
    });
    try {
      const warned = svc.logs.filter((l) => l['event'] === 'auth_disabled');
      expect(warned).to.have.length(1);
      expect(warned[0]).to.include({ level: 40, component: 'security', profile: 'production' });
      expect((await fetch(`${svc.url}/users`)).status).to.equal(200);
      expect((await fetch(`${svc.service.adminUrl}/metrics`)).status).to.equal(200);
    } finally {
      await svc.stop();
    }
    const afterStop = await fetch(`${svc.service.adminUrl}/metrics`).then(
      () => 'answered',
      () => 'refused',
    );
    expect(afterStop).to.equal('refused');
  });
});
