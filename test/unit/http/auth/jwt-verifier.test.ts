import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import type { JwtConfig } from '../../../../src/config/app-config.js';
import { AuthenticationError } from '../../../../src/http/auth/auth-errors.js';
import { createJwtVerifier } from '../../../../src/http/auth/jwt-verifier.js';
import { catchConfigError } from '../../../support/catch-config-error.js';
import { createJwtIssuer } from '../../../support/jwt-issuer.js';

const JWT: JwtConfig = { publicKey: '', jwksUrl: '', issuer: '', audience: '', clockTolerance: 5_000 };

describe('createJwtVerifier()', () => {
  const issue = (cfg: Partial<JwtConfig>) =>
    catchConfigError(() => createJwtVerifier({ ...JWT, ...cfg })).issues;

  it('refuses to exist without a key, naming both settings', () => {
    const [only] = issue({});
    expect(only).to.include('SERVER_AUTH_JWT_PUBLIC_KEY').and.include('SERVER_AUTH_JWT_JWKS_URL');
  });

  it('refuses a public key and a JWKS URL together', async () => {
    const { publicKeyPem } = await createJwtIssuer();
    expect(issue({ publicKey: publicKeyPem, jwksUrl: 'https://issuer.test/jwks' })[0]).to.include('both set');
  });

  it('refuses a private key, a short RSA key, a P-384 key and text that is no key, never echoing the value', () => {
    const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const cases: Array<[string, RegExp]> = [
      [rsa1024.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, /is a private key/],
      [rsa1024.publicKey.export({ type: 'spki', format: 'pem' }) as string, /shorter than 2048 bits/],
      [p384.publicKey.export({ type: 'spki', format: 'pem' }) as string, /not on P-256/],
      ['not a key', /is not a PEM public key/],
    ];
    for (const [publicKey, problem] of cases) {
      const [only] = issue({ publicKey });
      expect(only)
        .to.match(/^server\.auth\.jwt\.publicKey: SERVER_AUTH_JWT_PUBLIC_KEY /)
        .and.match(problem);
      if (publicKey.length > 60) expect(only).not.to.include(publicKey.slice(30, 60));
    }
  });

  it('refuses a JWKS URL over plain http except on loopback', () => {
    expect(issue({ jwksUrl: 'http://issuer.test/jwks' })[0]).to.match(
      /^server\.auth\.jwt\.jwksUrl: .* must be https/,
    );
    expect(issue({ jwksUrl: 'not a url' })[0]).to.include('is not a URL');
    expect(() => createJwtVerifier({ ...JWT, jwksUrl: 'http://127.0.0.1:9/jwks' })).not.to.throw();
  });

  it('accepts a PEM whose newlines arrived as literal \\n (one environment variable line)', async () => {
    const signer = await createJwtIssuer('EdDSA');
    const verifier = createJwtVerifier({
      ...JWT,
      publicKey: signer.publicKeyPem.trim().replaceAll('\n', '\\n'),
    });
    expect(await verifier.verify(await signer.sign({ scope: 'users:read' }))).to.deep.equal({
      sub: 'client-1',
      scopes: ['users:read'],
    });
  });

  it('refuses a token with an empty sub', async () => {
    const signer = await createJwtIssuer('ES256');
    const verifier = createJwtVerifier({ ...JWT, publicKey: signer.publicKeyPem });
    const err = await verifier.verify(await signer.sign({ sub: '' })).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(AuthenticationError).and.include({ reason: 'missing_claim' });
  });
});
