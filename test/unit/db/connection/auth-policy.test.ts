import { expect } from 'chai';
import { authRequestCheck, type AuthPolicyInput } from '../../../../src/db/connection/auth-policy.js';

const base: AuthPolicyInput = {
  tls: true,
  verified: true,
  host: 'db.example.com',
  channelBinding: 'prefer',
  allowInsecurePasswordAuth: false,
  sslMode: 'verify-full',
  where: 'db.example.com:5432',
};
const codeOf = (err: Error | undefined): unknown => (err as { code?: unknown } | undefined)?.code;

describe('authRequestCheck()', () => {
  for (const kind of ['cleartext', 'md5'] as const) {
    describe(`a ${kind} password request`, () => {
      it('is answered over a verified connection', () => {
        expect(authRequestCheck(base)({ kind })).to.equal(undefined);
      });

      it('is refused over unverified TLS (require), naming the setting', () => {
        const err = authRequestCheck({ ...base, verified: false, sslMode: 'require' })({ kind });
        expect(codeOf(err)).to.equal('INSECURE_PASSWORD_AUTH');
        expect(err?.message).to.contain('DB_ALLOW_INSECURE_AUTH').and.contain('sslMode=require');
      });

      it('is refused without TLS (disable, or prefer after the fallback)', () => {
        const err = authRequestCheck({ ...base, tls: false, verified: false, sslMode: 'prefer' })({ kind });
        expect(codeOf(err)).to.equal('INSECURE_PASSWORD_AUTH');
        expect(err?.message).to.contain('without TLS');
      });

      it('is answered over an unverified connection when allowInsecurePasswordAuth is set', () => {
        const check = authRequestCheck({
          ...base,
          tls: false,
          verified: false,
          allowInsecurePasswordAuth: true,
        });
        expect(check({ kind })).to.equal(undefined);
      });

      it('is answered over a Unix socket (no network path)', () => {
        const check = authRequestCheck({ ...base, tls: false, verified: false, host: '/var/run/postgresql' });
        expect(check({ kind })).to.equal(undefined);
      });

      it('is refused with channelBinding require, even over a verified connection', () => {
        const err = authRequestCheck({ ...base, channelBinding: 'require' })({ kind });
        expect(codeOf(err)).to.equal('CHANNEL_BINDING_REQUIRED');
        expect(err?.message).to.contain('DB_CHANNEL_BINDING');
      });
    });
  }

  it('always answers SCRAM, which never sends the password, over any connection', () => {
    const check = authRequestCheck({ ...base, tls: false, verified: false, sslMode: 'disable' });
    expect(check({ kind: 'sasl', mechanisms: ['SCRAM-SHA-256'] })).to.equal(undefined);
    expect(check({ kind: 'scram', mechanism: 'SCRAM-SHA-256' })).to.equal(undefined);
    expect(check({ kind: 'ok' })).to.equal(undefined);
  });

  describe('channelBinding require', () => {
    const bindingRequired = { ...base, channelBinding: 'require' as const };

    it('accepts SCRAM-SHA-256-PLUS over TLS and the AuthenticationOk after it', () => {
      const check = authRequestCheck(bindingRequired);
      expect(check({ kind: 'sasl', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] })).to.equal(
        undefined,
      );
      expect(check({ kind: 'scram', mechanism: 'SCRAM-SHA-256-PLUS' })).to.equal(undefined);
      expect(check({ kind: 'ok' })).to.equal(undefined);
    });

    it('refuses a SCRAM exchange pg would start without binding, although PLUS was offered', () => {
      const check = authRequestCheck(bindingRequired);
      expect(check({ kind: 'sasl', mechanisms: ['SCRAM-SHA-256-PLUS'] })).to.equal(undefined);
      expect(codeOf(check({ kind: 'scram', mechanism: 'SCRAM-SHA-256' }))).to.equal(
        'CHANNEL_BINDING_REQUIRED',
      );
      expect(codeOf(check({ kind: 'ok' }))).to.equal('CHANNEL_BINDING_REQUIRED');
    });

    it('refuses SCRAM without the PLUS mechanism', () => {
      const err = authRequestCheck(bindingRequired)({ kind: 'sasl', mechanisms: ['SCRAM-SHA-256'] });
      expect(codeOf(err)).to.equal('CHANNEL_BINDING_REQUIRED');
      expect(err?.message).to.contain('offered only SCRAM-SHA-256');
    });

    it('refuses PLUS offered on a connection without TLS (nothing to bind to)', () => {
      const err = authRequestCheck({ ...bindingRequired, tls: false })({
        kind: 'sasl',
        mechanisms: ['SCRAM-SHA-256-PLUS'],
      });
      expect(codeOf(err)).to.equal('CHANNEL_BINDING_REQUIRED');
    });

    it('refuses an AuthenticationOk without a SCRAM exchange (trust)', () => {
      const err = authRequestCheck(bindingRequired)({ kind: 'ok' });
      expect(codeOf(err)).to.equal('CHANNEL_BINDING_REQUIRED');
    });
  });

  it('lets trust through with channelBinding prefer', () => {
    expect(authRequestCheck(base)({ kind: 'ok' })).to.equal(undefined);
  });
});
