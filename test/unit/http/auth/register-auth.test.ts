import { createHmac } from 'node:crypto';
import { expect } from 'chai';
import Fastify, { type FastifyInstance } from 'fastify';
import type { AuthConfig, JwtConfig } from '../../../../src/config/app-config.js';
import { registerAuth } from '../../../../src/http/auth/register-auth.js';
import { installErrorHandler } from '../../../../src/http/error-handler.js';
import { captureLogger, type CapturedLogger } from '../../../support/capture-logger.js';
import {
  createJwtIssuer,
  serveJwks,
  unsignedToken,
  type JwtIssuer,
  type JwksServer,
} from '../../../support/jwt-issuer.js';

const JWT: JwtConfig = { publicKey: '', jwksUrl: '', issuer: '', audience: '', clockTolerance: 5_000 };

/** A bare app with one route per scope, a public one, a closed one and the service's error handler. */
function appWith(auth: AuthConfig, log: CapturedLogger): FastifyInstance {
  const app = Fastify();
  installErrorHandler(app);
  registerAuth(app, auth, { logger: log.logger, profile: 'test' });
  const whoami = (request: { user?: { sub: string } | undefined }) => ({ sub: request.user?.sub ?? null });
  app.get('/read', { config: { scope: 'users:read' } }, (request) => Promise.resolve(whoami(request)));
  app.post('/write', { config: { scope: 'users:write' } }, (request) => Promise.resolve(whoami(request)));
  app.delete('/admin', { config: { scope: 'users:admin' } }, (request) => Promise.resolve(whoami(request)));
  app.get('/admin-read', { config: { scope: 'users:admin' } }, (request) => Promise.resolve(whoami(request)));
  app.get('/open', { config: { public: true } }, () => Promise.resolve({ open: true }));
  app.get('/closed', () => Promise.resolve({ closed: false }));
  return app;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('registerAuth()', () => {
  let issuer: JwtIssuer;
  let log: CapturedLogger;
  let app: FastifyInstance;

  before(async () => {
    issuer = await createJwtIssuer('RS256');
  });
  beforeEach(() => {
    log = captureLogger();
    app = appWith(
      {
        mode: 'jwt',
        jwt: { ...JWT, publicKey: issuer.publicKeyPem, issuer: 'https://issuer.test', audience: 'users-api' },
      },
      log,
    );
  });
  afterEach(() => app.close());

  const claims = (extra: Record<string, unknown> = {}) => ({
    iss: 'https://issuer.test',
    aud: 'users-api',
    scope: 'users:read users:write users:admin',
    ...extra,
  });

  async function expect401(headers: Record<string, string>, code: string, reason: string) {
    const res = await app.inject({ method: 'GET', url: '/read', headers });
    expect(res.statusCode).to.equal(401);
    const body = res.json<{ code: string; statusCode: number; message: string; requestId: string }>();
    expect(body).to.include({ statusCode: 401, code });
    expect(body.requestId).to.be.a('string');
    const failures = log.lines.filter((l) => l['event'] === 'auth_failed');
    expect(failures.map((l) => l['reason'])).to.deep.equal([reason]);
    expect(failures[0]).to.include({ component: 'security', route: '/read', method: 'GET' });
    return res;
  }

  it('answers 401 with a plain Bearer challenge when no token is sent', async () => {
    const res = await expect401({}, 'UNAUTHORIZED', 'missing_token');
    expect(res.headers['www-authenticate']).to.equal('Bearer realm="api"');
  });

  it('treats another scheme as no token', async () => {
    await expect401({ authorization: 'Basic dXNlcjpwYXNz' }, 'UNAUTHORIZED', 'missing_token');
  });

  it('lets a valid token through and puts its subject on the request', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/read',
      headers: bearer(await issuer.sign(claims())),
    });
    expect(res.statusCode).to.equal(200);
    expect(res.json()).to.deep.equal({ sub: 'client-1' });
  });

  it('refuses an expired token with error="invalid_token"', async () => {
    const past = Math.floor(Date.now() / 1000) - 60;
    const res = await expect401(
      bearer(await issuer.sign(claims({ exp: past, iat: past - 60 }))),
      'INVALID_TOKEN',
      'expired',
    );
    expect(res.headers['www-authenticate']).to.match(
      /^Bearer realm="api", error="invalid_token", error_description="/,
    );
  });

  it('accepts a token expired within the clock tolerance', async () => {
    const justNow = Math.floor(Date.now() / 1000) - 2;
    const token = await issuer.sign(claims({ exp: justNow }));
    expect((await app.inject({ method: 'GET', url: '/read', headers: bearer(token) })).statusCode).to.equal(
      200,
    );
  });

  it('refuses a token whose nbf is in the future', async () => {
    const later = Math.floor(Date.now() / 1000) + 120;
    await expect401(bearer(await issuer.sign(claims({ nbf: later }))), 'INVALID_TOKEN', 'not_yet_valid');
  });

  it('refuses a token signed by another key', async () => {
    const other = await createJwtIssuer('RS256');
    await expect401(bearer(await other.sign(claims())), 'INVALID_TOKEN', 'bad_signature');
  });

  it('refuses a token for another audience', async () => {
    await expect401(
      bearer(await issuer.sign(claims({ aud: 'billing-api' }))),
      'INVALID_TOKEN',
      'wrong_audience',
    );
  });

  it('refuses a token from another issuer', async () => {
    await expect401(
      bearer(await issuer.sign(claims({ iss: 'https://evil.test' }))),
      'INVALID_TOKEN',
      'wrong_issuer',
    );
  });

  it('refuses a token without exp or without sub', async () => {
    await expect401(bearer(await issuer.sign(claims({ exp: undefined }))), 'INVALID_TOKEN', 'missing_claim');
    log.lines.length = 0;
    await expect401(bearer(await issuer.sign(claims({ sub: undefined }))), 'INVALID_TOKEN', 'missing_claim');
  });

  it('refuses an unsigned token (alg: none)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const forged = unsignedToken({ ...claims(), sub: 'admin', exp: now + 3600 });
    await expect401(bearer(forged), 'INVALID_TOKEN', 'algorithm_not_allowed');
  });

  it('refuses an HS256 token whose HMAC secret is the public key (algorithm confusion)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const part = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const signingInput = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ ...claims(), sub: 'admin', exp: now + 3600 })}`;
    const signature = createHmac('sha256', issuer.publicKeyPem).update(signingInput).digest('base64url');
    await expect401(bearer(`${signingInput}.${signature}`), 'INVALID_TOKEN', 'algorithm_not_allowed');
  });

  it('refuses a token that is no JWT', async () => {
    await expect401(bearer('not.a.jwt'), 'INVALID_TOKEN', 'malformed_token');
  });

  describe('scopes', () => {
    const call = async (
      method: 'GET' | 'POST' | 'DELETE',
      url: string,
      scopeClaims: Record<string, unknown>,
    ) =>
      app.inject({
        method,
        url,
        headers: bearer(await issuer.sign(claims({ scope: undefined, ...scopeClaims }))),
      });

    for (const [method, url, scope] of [
      ['GET', '/read', 'users:read'],
      ['POST', '/write', 'users:write'],
      ['DELETE', '/admin', 'users:admin'],
    ] as const) {
      it(`lets ${method} ${url} through with ${scope}`, async () => {
        expect((await call(method, url, { scope })).statusCode).to.equal(200);
      });

      it(`answers 403 to ${method} ${url} without ${scope}, naming it`, async () => {
        const others = ['users:read', 'users:write', 'users:admin'].filter((s) => s !== scope).join(' ');
        const res = await call(method, url, { scope: others });
        expect(res.statusCode).to.equal(403);
        expect(res.json()).to.include({ statusCode: 403, code: 'INSUFFICIENT_SCOPE' });
        expect(res.headers['www-authenticate']).to.equal(
          `Bearer realm="api", error="insufficient_scope", scope="${scope}"`,
        );
        const refused = log.lines.filter((l) => l['event'] === 'scope_refused');
        expect(refused).to.have.length(1);
        expect(refused[0]).to.include({ component: 'security', sub: 'client-1', scope });
      });
    }

    it('reads scopes from an scp array and an scp string', async () => {
      expect((await call('POST', '/write', { scp: ['users:read', 'users:write'] })).statusCode).to.equal(200);
      expect((await call('POST', '/write', { scp: 'users:write' })).statusCode).to.equal(200);
      expect((await call('POST', '/write', { scp: ['users:read'] })).statusCode).to.equal(403);
    });

    it('does not take a scope that is only a prefix or a substring of another', async () => {
      expect((await call('GET', '/read', { scope: 'users:readonly users:rea' })).statusCode).to.equal(403);
    });
  });

  it('keeps public routes open and closes routes that declare no scope', async () => {
    expect((await app.inject({ method: 'GET', url: '/open' })).statusCode).to.equal(200);
    const token = await issuer.sign(claims());
    const closed = await app.inject({ method: 'GET', url: '/closed', headers: bearer(token) });
    expect(closed.statusCode).to.equal(403);
    expect(closed.json()).to.include({ code: 'INSUFFICIENT_SCOPE' });
    expect(log.lines.some((l) => l.msg.includes('declares no scope') && l['route'] === '/closed')).to.equal(
      true,
    );
  });

  it('answers an unknown URL with 401 without a token and 404 with one', async () => {
    expect((await app.inject({ method: 'GET', url: '/nowhere' })).statusCode).to.equal(401);
    const token = await issuer.sign(claims());
    expect(
      (await app.inject({ method: 'GET', url: '/nowhere', headers: bearer(token) })).statusCode,
    ).to.equal(404);
  });

  it('never logs the token', async () => {
    const good = await issuer.sign(claims({ scope: 'users:read' }));
    const bad = await (await createJwtIssuer('RS256')).sign(claims());
    await app.inject({ method: 'DELETE', url: '/admin', headers: bearer(good) });
    await app.inject({ method: 'GET', url: '/read', headers: bearer(bad) });
    expect(log.lines.filter((l) => l['event'] !== undefined).map((l) => l['event'])).to.deep.equal([
      'scope_refused',
      'auth_failed',
    ]);
    for (const token of [good, bad]) {
      expect(log.text()).not.to.include(token);
      expect(log.text()).not.to.include(token.split('.')[2]);
    }
  });

  it('logs each admin write with its caller, and no admin read', async () => {
    const token = await issuer.sign(claims({ sub: 'ops-7' }));
    await app.inject({ method: 'DELETE', url: '/admin', headers: bearer(token) });
    expect(
      (await app.inject({ method: 'GET', url: '/admin-read', headers: bearer(token) })).statusCode,
    ).to.equal(200);
    const actions = log.lines.filter((l) => l['event'] === 'admin_action');
    expect(actions).to.have.length(1);
    expect(actions[0]).to.include({
      component: 'security',
      sub: 'ops-7',
      method: 'DELETE',
      route: '/admin',
      statusCode: 200,
    });
  });

  for (const alg of ['ES256', 'EdDSA'] as const) {
    it(`verifies ${alg} tokens against an ${alg === 'ES256' ? 'EC P-256' : 'Ed25519'} key, and only those`, async () => {
      const keyed = await createJwtIssuer(alg);
      const local = appWith({ mode: 'jwt', jwt: { ...JWT, publicKey: keyed.publicKeyPem } }, captureLogger());
      try {
        const ok = await local.inject({
          method: 'GET',
          url: '/read',
          headers: bearer(await keyed.sign({ scope: 'users:read' })),
        });
        expect(ok.statusCode).to.equal(200);
        const rsa = await local.inject({
          method: 'GET',
          url: '/read',
          headers: bearer(await issuer.sign({ scope: 'users:read' })),
        });
        expect(rsa.statusCode).to.equal(401);
      } finally {
        await local.close();
      }
    });
  }

  describe('with a JWKS URL', () => {
    let jwks: JwksServer;
    let es: JwtIssuer;
    let local: FastifyInstance;
    before(async () => {
      es = await createJwtIssuer('ES256');
      jwks = await serveJwks([issuer, es]);
    });
    after(() => jwks.close());
    beforeEach(() => {
      local = appWith({ mode: 'jwt', jwt: { ...JWT, jwksUrl: jwks.url } }, log);
    });
    afterEach(() => local.close());

    it('verifies tokens of every key in the set, fetching it once', async () => {
      for (const signer of [issuer, es]) {
        const res = await local.inject({
          method: 'GET',
          url: '/read',
          headers: bearer(await signer.sign({ scope: 'users:read' })),
        });
        expect(res.statusCode).to.equal(200);
      }
      expect(jwks.requests).to.equal(1);
    });

    it('refuses a token signed by a key not in the set', async () => {
      const stranger = await createJwtIssuer('RS256');
      const res = await local.inject({
        method: 'GET',
        url: '/read',
        headers: bearer(await stranger.sign({ scope: 'users:read' })),
      });
      expect(res.statusCode).to.equal(401);
      expect(log.lines.filter((l) => l['event'] === 'auth_failed').map((l) => l['reason'])).to.deep.equal([
        'unknown_key',
      ]);
    });

    it('answers 503 when the key set cannot be fetched', async () => {
      const gone = appWith({ mode: 'jwt', jwt: { ...JWT, jwksUrl: 'http://127.0.0.1:1/jwks.json' } }, log);
      try {
        const res = await gone.inject({
          method: 'GET',
          url: '/read',
          headers: bearer(await issuer.sign({ scope: 'users:read' })),
        });
        expect(res.statusCode).to.equal(503);
        expect(res.json()).to.include({ code: 'AUTH_UNAVAILABLE' });
        expect(res.headers['retry-after']).to.equal('5');
      } finally {
        await gone.close();
      }
    });
  });

  describe('in mode none', () => {
    it('lets every route through with no user on the request', async () => {
      const open = appWith({ mode: 'none', jwt: JWT }, log);
      try {
        const res = await open.inject({ method: 'DELETE', url: '/admin' });
        expect(res.statusCode).to.equal(200);
        expect(res.json()).to.deep.equal({ sub: null });
        expect(log.lines.some((l) => l['event'] === 'auth_disabled')).to.equal(false); // test profile
      } finally {
        await open.close();
      }
    });

    it('warns at start outside development and test', () => {
      const app2 = Fastify();
      registerAuth(app2, { mode: 'none', jwt: JWT }, { logger: log.logger, profile: 'production' });
      const warned = log.lines.filter((l) => l['event'] === 'auth_disabled');
      expect(warned).to.have.length(1);
      expect(warned[0]).to.include({ level: 40, component: 'security', profile: 'production' });
    });
  });
});
