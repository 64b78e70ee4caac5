import { expect } from 'chai';
import { loadConfig } from '../../../src/config/index.js';
import { catchConfigError } from '../../support/catch-config-error.js';
import { useTempConfigDir } from '../../support/temp-config-dir.js';

describe('loadConfig(): server.auth and server.admin', () => {
  const tmp = useTempConfigDir();
  const load = (env: Record<string, string> = {}, profile = 'development') =>
    loadConfig({ env, envFile: false, configDir: tmp().dir, profile });
  const production = { DB_HOST: 'db', DB_PASSWORD: 'pw' };

  it('defaults to mode jwt with the admin listener on 9090 in production, and to mode none without it elsewhere', () => {
    const prod = load(production, 'production').server;
    expect(prod.auth.mode).to.equal('jwt');
    expect(prod.admin).to.deep.equal({ port: 9090, host: '127.0.0.1' });
    for (const profile of ['development', 'test']) {
      const { auth, admin } = load({}, profile).server;
      expect(auth.mode, profile).to.equal('none');
      expect(admin.port, profile).to.equal(0);
    }
    // A profile of its own gets the safe built-in default.
    expect(load({}, 'staging').server.auth.mode).to.equal('jwt');
  });

  it('reads every SERVER_AUTH_* and SERVER_ADMIN_* variable', () => {
    const { auth, admin } = load({
      SERVER_AUTH_MODE: 'jwt',
      SERVER_AUTH_JWT_JWKS_URL: 'https://issuer.test/jwks.json',
      SERVER_AUTH_JWT_ISSUER: 'https://issuer.test/',
      SERVER_AUTH_JWT_AUDIENCE: 'users-api',
      SERVER_AUTH_JWT_CLOCK_TOLERANCE: '30s',
      SERVER_ADMIN_PORT: '9191',
      SERVER_ADMIN_HOST: '0.0.0.0',
    }).server;
    expect(auth).to.deep.equal({
      mode: 'jwt',
      jwt: {
        publicKey: '',
        jwksUrl: 'https://issuer.test/jwks.json',
        issuer: 'https://issuer.test/',
        audience: 'users-api',
        clockTolerance: 30_000,
      },
    });
    expect(admin).to.deep.equal({ port: 9191, host: '0.0.0.0' });
  });

  it('reads the public key from SERVER_AUTH_JWT_PUBLIC_KEY_FILE', () => {
    const pem = '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----';
    const file = tmp().write('jwt.pem', `${pem}\n`);
    expect(load({ SERVER_AUTH_JWT_PUBLIC_KEY_FILE: file }).server.auth.jwt.publicKey).to.equal(pem);
  });

  it('names a bad mode and an admin port equal to the public one', () => {
    const issues = catchConfigError(() =>
      load({ SERVER_AUTH_MODE: 'basic', SERVER_PORT: '8080', SERVER_ADMIN_PORT: '8080' }),
    ).issues.join('\n');
    expect(issues).to.match(/^server\.auth\.mode: .*SERVER_AUTH_MODE/m);
    expect(issues).to.match(/^server\.admin\.port: must differ from server\.port \(8080\)/m);
  });

  it('lets production load without a key (the migration Job needs none): the service refuses to start instead', () => {
    expect(load(production, 'production').server.auth.jwt).to.include({ publicKey: '', jwksUrl: '' });
  });
});
