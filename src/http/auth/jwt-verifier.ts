import { createPublicKey, type KeyObject } from 'node:crypto';
import {
  createRemoteJWKSet,
  errors,
  jwtVerify,
  type JWSHeaderParameters,
  type FlattenedJWSInput,
  type JWTVerifyGetKey,
} from 'jose';
import type { JwtConfig } from '../../config/app-config.js';
import { ConfigError } from '../../config/config-error.js';
import { AuthenticationError, AuthUnavailableError, type AuthFailureReason } from './auth-errors.js';
import type { AuthUser } from './auth-user.js';
import { tokenScopes } from './scopes.js';

/** The algorithms this service accepts: one per key type (RSA, EC P-256, Ed25519). */
export const JWT_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;
/** One of `JWT_ALGORITHMS`. */
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

/** Checks bearer tokens. */
export interface JwtVerifier {
  /**
   * Verifies `token` and returns its subject and scopes.
   * @throws AuthenticationError naming the failed check; AuthUnavailableError when the key set
   *   cannot be fetched.
   */
  verify(token: string): Promise<AuthUser>;
}

/** Longest wait for the JWKS endpoint, ms (jose's default as well). */
const JWKS_TIMEOUT_MS = 5_000;
/** Shortest RSA modulus accepted, bits (NIST SP 800-131A). */
const MIN_RSA_BITS = 2048;

/**
 * A verifier of RS256 / ES256 / EdDSA bearer JWTs with jose, against `cfg.publicKey` (PEM) or
 * the key set at `cfg.jwksUrl`. Checks the signature, `exp` and `nbf` (within
 * `cfg.clockTolerance`), `iss` and `aud` when configured; `exp` and `sub` are required.
 *
 * Algorithm confusion is closed twice: the algorithms accepted are pinned to the configured
 * key's type (an RSA key accepts RS256 only, so an HS256 token "signed" with the public key
 * as an HMAC secret, or `alg: none`, is refused before any key is used), and jose refuses a key
 * whose type does not match the header's algorithm.
 *
 * @throws ConfigError naming `SERVER_AUTH_JWT_PUBLIC_KEY` / `SERVER_AUTH_JWT_JWKS_URL` when
 *   neither or both are set, when the PEM is not a public key of an accepted type (a private
 *   key is refused: it must not sit in this service's configuration), or the URL is not https
 *   (http is accepted on loopback only).
 */
export function createJwtVerifier(cfg: JwtConfig): JwtVerifier {
  const { key, algorithms } = verificationKey(cfg);
  const options = {
    algorithms,
    requiredClaims: ['exp', 'sub'],
    clockTolerance: cfg.clockTolerance / 1000, // jose takes seconds
    ...(cfg.issuer !== '' && { issuer: cfg.issuer }),
    ...(cfg.audience !== '' && { audience: cfg.audience }),
  };
  return {
    async verify(token: string): Promise<AuthUser> {
      try {
        const { payload } =
          typeof key === 'function'
            ? await jwtVerify(token, key, options) // the two overloads of jwtVerify
            : await jwtVerify(token, key, options);
        if (typeof payload.sub !== 'string' || payload.sub === '')
          throw new AuthenticationError('missing_claim');
        return { sub: payload.sub, scopes: tokenScopes(payload) };
      } catch (err) {
        if (err instanceof AuthenticationError || err instanceof AuthUnavailableError) throw err;
        throw new AuthenticationError(failureReason(err), { cause: err });
      }
    },
  };
}

function verificationKey(cfg: JwtConfig): {
  key: KeyObject | JWTVerifyGetKey;
  algorithms: JwtAlgorithm[];
} {
  if (cfg.publicKey !== '' && cfg.jwksUrl !== '') {
    throw new ConfigError([
      'server.auth.jwt.publicKey: SERVER_AUTH_JWT_PUBLIC_KEY and SERVER_AUTH_JWT_JWKS_URL are both set; set only one',
    ]);
  }
  if (cfg.publicKey !== '') return publicKeyOf(cfg.publicKey);
  if (cfg.jwksUrl !== '') return { key: remoteKeySet(cfg.jwksUrl), algorithms: [...JWT_ALGORITHMS] };
  throw new ConfigError([
    'server.auth.jwt.publicKey: server.auth.mode is jwt but no key is configured: set ' +
      'SERVER_AUTH_JWT_PUBLIC_KEY (or SERVER_AUTH_JWT_PUBLIC_KEY_FILE) or SERVER_AUTH_JWT_JWKS_URL, ' +
      'or SERVER_AUTH_MODE=none to run without authentication',
  ]);
}

/** The public key of a PEM and the one algorithm its type signs with. */
function publicKeyOf(pem: string): { key: KeyObject; algorithms: JwtAlgorithm[] } {
  const issue = (problem: string) =>
    new ConfigError([`server.auth.jwt.publicKey: SERVER_AUTH_JWT_PUBLIC_KEY ${problem}`]);
  // A PEM pasted into one environment variable line often arrives with literal "\n".
  const text = pem.includes('\n') ? pem : pem.replaceAll('\\n', '\n');
  if (text.includes('PRIVATE KEY')) throw issue('is a private key; give the issuer public key only');
  let key: KeyObject;
  try {
    key = createPublicKey(text);
  } catch (err) {
    throw new ConfigError(
      ['server.auth.jwt.publicKey: SERVER_AUTH_JWT_PUBLIC_KEY is not a PEM public key or certificate'],
      { cause: err },
    );
  }
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
      if ((details.modulusLength ?? 0) < MIN_RSA_BITS)
        throw issue(`is an RSA key shorter than ${MIN_RSA_BITS} bits`);
      return { key, algorithms: ['RS256'] };
    case 'ec':
      if (details.namedCurve !== 'prime256v1') throw issue('is an EC key not on P-256 (ES256)');
      return { key, algorithms: ['ES256'] };
    case 'ed25519':
      return { key, algorithms: ['EdDSA'] };
    default:
      throw issue(
        `is a ${key.asymmetricKeyType ?? 'unknown'} key; use RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA)`,
      );
  }
}

/** jose's cached remote key set; a fetch failure is "unavailable" (503), not a bad token (401). */
function remoteKeySet(url: string): JWTVerifyGetKey {
  const parsed = jwksUrl(url);
  const jwks = createRemoteJWKSet(parsed, { timeoutDuration: JWKS_TIMEOUT_MS });
  return async (header: JWSHeaderParameters, input: FlattenedJWSInput) => {
    try {
      return await jwks(header, input);
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys)
        throw new AuthenticationError('unknown_key', { cause: err });
      throw new AuthUnavailableError({ cause: err });
    }
  };
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

function jwksUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(['server.auth.jwt.jwksUrl: SERVER_AUTH_JWT_JWKS_URL is not a URL']);
  }
  const plainOk = parsed.protocol === 'http:' && LOOPBACK_HOSTS.has(parsed.hostname);
  if (parsed.protocol !== 'https:' && !plainOk) {
    throw new ConfigError([
      'server.auth.jwt.jwksUrl: SERVER_AUTH_JWT_JWKS_URL must be https (http only on loopback): ' +
        'anyone on the path could hand the service their own keys',
    ]);
  }
  return parsed;
}

/** Which check a jose error reports. */
function failureReason(err: unknown): AuthFailureReason {
  if (err instanceof errors.JWTExpired) return 'expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return 'missing_claim';
    if (err.claim === 'nbf') return 'not_yet_valid';
    if (err.claim === 'iss') return 'wrong_issuer';
    if (err.claim === 'aud') return 'wrong_audience';
    return 'invalid_token';
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported)
    return 'algorithm_not_allowed';
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return 'malformed_token';
  return 'invalid_token';
}
