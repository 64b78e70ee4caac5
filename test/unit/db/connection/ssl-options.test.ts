import { expect } from 'chai';
import { isTlsRefused, sslOptions } from '../../../../src/db/connection/ssl-options.js';

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

describe('sslOptions()', () => {
  it('maps disable to plain TCP', () => {
    expect(sslOptions('disable', CA)).to.deep.equal({ ssl: false, fallbackToPlain: false, verified: false });
  });

  it('maps prefer to unverified TLS with a fallback to plain TCP', () => {
    expect(sslOptions('prefer')).to.deep.equal({
      ssl: { rejectUnauthorized: false },
      fallbackToPlain: true,
      verified: false,
    });
  });

  it('maps require to unverified TLS without fallback', () => {
    expect(sslOptions('require')).to.deep.equal({
      ssl: { rejectUnauthorized: false },
      fallbackToPlain: false,
      verified: false,
    });
  });

  it('makes require verify the chain when a root certificate is given, as libpq does', () => {
    const plan = sslOptions('require', CA);
    expect(plan.ssl).to.include({ rejectUnauthorized: true, ca: CA });
    expect(plan.verified).to.equal(true);
    expect(plan.ssl && plan.ssl.checkServerIdentity).to.be.a('function');
  });

  it('maps verify-ca to chain verification against the CA without a host-name check', () => {
    const plan = sslOptions('verify-ca', CA);
    expect(plan.fallbackToPlain).to.equal(false);
    expect(plan.verified).to.equal(true);
    expect(plan.ssl).to.include({ rejectUnauthorized: true, ca: CA });
    const check = plan.ssl ? plan.ssl.checkServerIdentity : undefined;
    expect(check?.('db.example.com', { subject: { CN: 'other.example.com' } } as never)).to.equal(undefined);
  });

  it('maps verify-full to chain and host-name verification (Node default identity check)', () => {
    const plan = sslOptions('verify-full', CA);
    expect(plan.ssl).to.deep.equal({ rejectUnauthorized: true, ca: CA });
    expect(plan.verified).to.equal(true);
  });

  it('leaves ca unset for the verify modes without a root certificate (Node trusts its built-in CAs)', () => {
    expect(sslOptions('verify-full')).to.deep.equal({
      ssl: { rejectUnauthorized: true },
      fallbackToPlain: false,
      verified: true,
    });
    expect(sslOptions('verify-ca').ssl).not.to.have.property('ca');
  });
});

describe('isTlsRefused()', () => {
  it('recognises pg\'s "server does not support SSL" error only', () => {
    expect(isTlsRefused(new Error('The server does not support SSL connections'))).to.equal(true);
    expect(isTlsRefused(new Error('self-signed certificate'))).to.equal(false);
    expect(isTlsRefused('The server does not support SSL connections')).to.equal(false);
  });
});
