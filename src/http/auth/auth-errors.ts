import { AppError } from '../../app-error.js';

/**
 * Why a request was not authenticated (the security log's `reason`): no bearer token, or one
 * that failed a check. Never derived from the token's content beyond which check failed.
 */
export const AUTH_FAILURE_REASONS = [
  'missing_token',
  'malformed_token',
  'bad_signature',
  'algorithm_not_allowed',
  'unknown_key',
  'expired',
  'not_yet_valid',
  'wrong_issuer',
  'wrong_audience',
  'missing_claim',
  'invalid_token',
] as const;
/** One of `AUTH_FAILURE_REASONS`. */
export type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

const MESSAGES: Readonly<Record<AuthFailureReason, string>> = {
  missing_token: 'A bearer token is required.',
  malformed_token: 'The bearer token is malformed.',
  bad_signature: 'The token signature does not verify.',
  algorithm_not_allowed: 'The token is signed with an algorithm that is not accepted.',
  unknown_key: 'The token is signed with an unknown key.',
  expired: 'The token has expired.',
  not_yet_valid: 'The token is not valid yet.',
  wrong_issuer: 'The token was issued by an issuer that is not accepted.',
  wrong_audience: 'The token is not meant for this service.',
  missing_claim: 'The token lacks a required claim (exp, sub).',
  invalid_token: 'The token is not valid.',
};

/**
 * The request carries no valid bearer token: 401 with `WWW-Authenticate: Bearer` (RFC 6750
 * section 3: no error code when no token was sent, `error="invalid_token"` otherwise).
 */
export class AuthenticationError extends AppError {
  readonly code = 'UNAUTHORIZED';
  /** Which check failed; `missing_token` when no bearer token was sent. */
  readonly reason: AuthFailureReason;

  constructor(reason: AuthFailureReason, options?: ErrorOptions) {
    super(MESSAGES[reason] ?? MESSAGES.invalid_token, options);
    this.reason = reason;
  }

  /** The problem body's code: `UNAUTHORIZED` without a token, `INVALID_TOKEN` for one that failed a check. */
  get problemCode(): 'UNAUTHORIZED' | 'INVALID_TOKEN' {
    return this.reason === 'missing_token' ? 'UNAUTHORIZED' : 'INVALID_TOKEN';
  }

  /** The `WWW-Authenticate` header of the 401 (fixed text: nothing from the request). */
  get challenge(): string {
    if (this.reason === 'missing_token') return 'Bearer realm="api"';
    return `Bearer realm="api", error="invalid_token", error_description="${this.message}"`;
  }
}

/**
 * The token is valid but lacks the route's scope (or the route declares none, so no token may
 * call it): 403 with `WWW-Authenticate: Bearer error="insufficient_scope"` (RFC 6750 section 3.1).
 */
export class InsufficientScopeError extends AppError {
  readonly code = 'INSUFFICIENT_SCOPE';
  /** The scope the route needs; undefined for a route that declares none (closed to everyone). */
  readonly scope: string | undefined;

  constructor(scope: string | undefined) {
    super(
      scope === undefined
        ? 'This route is closed: it declares no scope.'
        : `The token lacks the scope this route needs (${scope}).`,
    );
    this.scope = scope;
  }

  /** The `WWW-Authenticate` header of the 403. */
  get challenge(): string {
    const scope = this.scope === undefined ? '' : `, scope="${this.scope}"`;
    return `Bearer realm="api", error="insufficient_scope"${scope}`;
  }
}

/**
 * The token could not be checked because the key set (JWKS) could not be fetched: 503 with
 * `Retry-After`, not 401, so that a client does not throw away a token that may be valid.
 */
export class AuthUnavailableError extends AppError {
  readonly code = 'AUTH_UNAVAILABLE';

  constructor(options?: ErrorOptions) {
    super('The token issuer keys cannot be fetched right now; retry shortly.', options);
  }
}
