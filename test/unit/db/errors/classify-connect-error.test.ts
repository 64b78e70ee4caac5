import { expect } from 'chai';
import { classifyConnectError } from '../../../../src/db/errors/classify-error.js';
import { ConnectionError } from '../../../../src/db/errors/errors.js';
import { ENV_VARS } from '../../../../src/config/env-vars.js';

const withCode = (code: string, message = 'x'): Error => Object.assign(new Error(message), { code });

describe('classifyConnectError()', () => {
  for (const code of [
    'ECONNREFUSED',
    'ECONNRESET',
    'ETIMEDOUT',
    'EAI_AGAIN',
    'ENOTFOUND',
    'CONNECT_TIMEOUT',
    '57P03',
    '53300',
    '57P01',
    '08006',
  ])
    it(`treats ${code} as transient`, () => {
      expect(classifyConnectError(withCode(code)).transient).to.equal(true);
    });

  for (const [code, hint] of [
    ['28P01', /DB_PASSWORD/],
    ['28000', /DB_PASSWORD/],
    ['3D000', /does the database exist/],
    ['42501', /CONNECT privilege/],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', /\bDB_SSL_ROOT_CERT\b/],
    ['ERR_TLS_CERT_ALTNAME_INVALID', /host name/],
    ['SSL_ROOT_CERT_UNREADABLE', /\bDB_SSL_ROOT_CERT\b/],
  ] as const)
    it(`treats ${code} as permanent with a hint`, () => {
      const f = classifyConnectError(withCode(code));
      expect(f.transient).to.equal(false);
      expect(f.hint).to.match(hint);
    });

  it('names only environment variables that exist in its hints', () => {
    const codes = [
      '28P01',
      '3D000',
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'SSL_ROOT_CERT_UNREADABLE',
      'ENOTFOUND',
      'ECONNREFUSED',
    ];
    const named = codes.flatMap(
      (code) => classifyConnectError(withCode(code)).hint.match(/\bDB_[A-Z_]+\b/g) ?? [],
    );
    expect(named).to.include('DB_SSL_ROOT_CERT');
    // Every variable has a `<NAME>_FILE` twin that reads the value from a file.
    for (const name of named)
      expect(ENV_VARS, `hint names ${name}`).to.have.property(name.replace(/_FILE$/, ''));
  });

  it('treats pg connect timeouts and unexpected termination as transient', () => {
    expect(classifyConnectError(new Error('timeout expired')).transient).to.equal(true);
    expect(classifyConnectError(new Error('Connection terminated unexpectedly')).transient).to.equal(true);
    const knexTimeout = Object.assign(new Error('Knex: Timeout acquiring a connection.'), {
      name: 'KnexTimeoutError',
    });
    expect(classifyConnectError(knexTimeout).transient).to.equal(true);
  });

  it("treats PgBouncer's refused startup parameter as permanent, naming poolerMode, not the network", () => {
    const f = classifyConnectError(withCode('08P01', 'unsupported startup parameter: options'));
    expect(f).to.include({ transient: false, reason: 'startup_parameter_refused' });
    expect(f.hint).to.include('database.postgres.poolerMode').and.include('DB_POOLER_MODE=transaction');
    expect(ENV_VARS).to.have.property('DB_POOLER_MODE', 'database.postgres.poolerMode');
    // Any other 08P01 is still a broken connection.
    expect(classifyConnectError(withCode('08P01', 'invalid frontend message type'))).to.include({
      transient: true,
    });
  });

  it('treats a server without TLS under a TLS-requiring mode as permanent', () => {
    const f = classifyConnectError(new Error('The server does not support SSL connections'));
    expect(f).to.include({ transient: false, reason: 'no_tls' });
  });

  it('judges a wrapped error by its cause', () => {
    const wrapped = new ConnectionError('Could not open a database connection.', {
      cause: withCode('28P01'),
    });
    expect(classifyConnectError(wrapped)).to.include({ transient: false, reason: '28P01' });
  });

  it('looks inside AggregateError (Node tries IPv6 and IPv4)', () => {
    const agg = new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')], 'connect');
    expect(classifyConnectError(agg).transient).to.equal(true);
  });

  it('treats unknown errors as permanent', () => {
    expect(classifyConnectError(new Error('something odd'))).to.include({
      transient: false,
      reason: 'unknown',
    });
    expect(classifyConnectError('a string').transient).to.equal(false);
  });
});
