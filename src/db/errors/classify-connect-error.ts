import { TLS_REFUSED_MESSAGE } from '../connection/ssl-options.js';

/** What a failed connection attempt means for `connect()`'s retry loop. */
export interface ConnectFailure {
  /** Worth another attempt after a backoff (the server may come up, or free a slot). */
  transient: boolean;
  /** Short machine-friendly reason: a SQLSTATE, an errno code, or a word. */
  reason: string;
  /** A short, secret-free suggestion for the operator. */
  hint: string;
}

const TRANSIENT_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'EAI_AGAIN',
  // NXDOMAIN is permanent for a typo, but in Compose/Kubernetes a service's name resolves
  // only once the service exists; maxRetries bounds what a typo costs.
  'ENOTFOUND',
  'CONNECT_TIMEOUT',
]);

const TLS_VERIFY_CODE =
  /^(ERR_TLS_CERT_ALTNAME_INVALID|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_.*)$/;

const TRANSIENT_MESSAGE =
  /timeout expired|Connection terminated|connection timeout|Client network socket disconnected/i;

/**
 * Classifies one failed connection attempt as transient (retry after a backoff) or
 * permanent (fail at once), with an operator hint. Walks the `cause` chain, so a wrapped
 * driver error is judged by its origin. Unknown errors are permanent: retrying a
 * misconfiguration only delays the report.
 *
 * Transient: ECONNREFUSED, ECONNRESET, ETIMEDOUT, EHOSTUNREACH, ENETUNREACH, EPIPE,
 * EAI_AGAIN, ENOTFOUND, connect timeouts, 57P03 (starting up), 53300 (too many
 * connections), 57P01/57P02 and class 08. Permanent: 28P01/28000 (authentication),
 * 3D000 (unknown database), 42501 (no CONNECT privilege), TLS verification failures and a
 * server without TLS when TLS is required.
 */
export function classifyConnectError(err: unknown): ConnectFailure {
  for (const e of causeChain(err)) {
    const code = typeof e.code === 'string' ? e.code : undefined;
    const message = typeof e.message === 'string' ? e.message : '';
    // knex's acquire timeout and tarn's create timeout: the server did not answer in time.
    if (e.name === 'KnexTimeoutError' || e.name === 'TimeoutError')
      return transient('timeout', 'no answer in time; is the server up and reachable?');
    switch (code) {
      case '28P01':
      case '28000':
        return permanent(code, 'check DB_USER and DB_PASSWORD (or DB_PASSWORD_FILE)');
      case '3D000':
        return permanent(code, 'does the database exist? check DB_NAME');
      case '42501':
        return permanent(code, 'the role lacks the CONNECT privilege on the database');
      case '57P03':
        return transient(code, 'the server is starting up or in recovery');
      case '53300':
        return transient(
          code,
          'the server has no connection slots left; lower maxOpenConns or raise max_connections',
        );
      case '57P01':
      case '57P02':
        return transient(code, 'the server is shutting down or restarting');
      case 'SSL_ROOT_CERT_UNREADABLE':
        return permanent(code, 'cannot read the CA file named by DB_SSL_ROOT_CERT (sslRootCert)');
    }
    if (code?.startsWith('08')) return transient(code, 'the connection broke; check the network');
    if (code && TLS_VERIFY_CODE.test(code))
      return permanent(
        code,
        'the server certificate failed verification; check DB_SSL_ROOT_CERT and the host name',
      );
    if (TLS_REFUSED_MESSAGE.test(message))
      return permanent('no_tls', 'the server does not offer TLS; use DB_SSLMODE=disable or prefer');
    if (code && TRANSIENT_ERRNO.has(code)) return transient(code, hostHint(code));
    if (TRANSIENT_MESSAGE.test(message))
      return transient('timeout', 'no answer in time; is the server up and reachable?');
  }
  return permanent('unknown', 'see the cause for details');
}

function hostHint(code: string): string {
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name does not resolve; check DB_HOST';
  return 'is the server up? check DB_HOST and DB_PORT';
}

function transient(reason: string, hint: string): ConnectFailure {
  return { transient: true, reason, hint };
}

function permanent(reason: string, hint: string): ConnectFailure {
  return { transient: false, reason, hint };
}

/** The error and its causes (AggregateError members included), outermost first; bounded. */
function causeChain(err: unknown): Array<{ code?: unknown; message?: unknown; name?: unknown }> {
  const out: Array<{ code?: unknown; message?: unknown; name?: unknown }> = [];
  const queue: unknown[] = [err];
  while (queue.length > 0 && out.length < 10) {
    const e = queue.shift();
    if (typeof e !== 'object' || e === null) continue;
    out.push(e);
    if (e instanceof AggregateError) queue.push(...(e.errors as unknown[]));
    if ('cause' in e) queue.push((e as { cause?: unknown }).cause);
  }
  return out;
}
