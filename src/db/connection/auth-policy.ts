import type { ChannelBinding } from '../../config/app-config.js';
import type { AuthRequest } from '../knex-internals.js';

/** SCRAM with channel binding (tls-server-end-point), the one pg offers. */
const SCRAM_PLUS = 'SCRAM-SHA-256-PLUS';

/** What decides whether an authentication request may be answered on one connection. */
export interface AuthPolicyInput {
  /** The connection runs inside TLS. */
  tls: boolean;
  /** The server's certificate chain was checked against trusted CAs (`SslPlan.verified`). */
  verified: boolean;
  /** Host as pg connects: a path (starting with '/') is a Unix-socket directory. */
  host: string;
  channelBinding: ChannelBinding;
  allowInsecurePasswordAuth: boolean;
  /** For the messages: `sslMode` as configured, and `host:port`. */
  sslMode: string;
  where: string;
}

/**
 * The check `guardAuthentication` runs on each authentication request of one new connection:
 * - a cleartext or MD5 password request is refused on a TCP connection whose server was not
 *   verified (an on-path attacker would get the password, or an MD5 hash that is replayable
 *   to the same server and cheap to crack), unless `allowInsecurePasswordAuth`. A Unix socket
 *   has no path to be on, so it is allowed. SCRAM never sends the password: always allowed.
 * - `channelBinding: 'require'` (libpq's meaning) refuses every authentication that is not
 *   SCRAM-SHA-256-PLUS over TLS: a cleartext or MD5 request, a server that does not offer the
 *   PLUS mechanism, a SCRAM exchange pg would start without it, and an AuthenticationOk that
 *   arrives with no channel-bound exchange at all (trust, certificate).
 * @returns the check; each call returns the Error to fail the connect with, or undefined.
 *   The errors carry `code` `INSECURE_PASSWORD_AUTH` or `CHANNEL_BINDING_REQUIRED` and name the setting.
 */
export function authRequestCheck(input: AuthPolicyInput): (req: AuthRequest) => Error | undefined {
  let bound = false;
  const requireBinding = input.channelBinding === 'require';
  return (req) => {
    switch (req.kind) {
      case 'cleartext':
      case 'md5':
        if (requireBinding) return channelBindingRequired(input, `asked for ${label(req.kind)}`);
        if (input.verified || input.allowInsecurePasswordAuth || input.host.startsWith('/')) return undefined;
        return insecurePasswordAuth(input, req.kind);
      case 'sasl':
        if (requireBinding && !(input.tls && req.mechanisms.includes(SCRAM_PLUS)))
          return channelBindingRequired(
            input,
            input.tls
              ? `offered only ${req.mechanisms.join(', ') || 'no mechanism'}`
              : 'was reached without TLS',
          );
        return undefined;
      case 'scram':
        // What pg really sends decides, not what was offered.
        bound = input.tls && req.mechanism === SCRAM_PLUS;
        if (requireBinding && !bound)
          return channelBindingRequired(input, `was about to get ${req.mechanism} without channel binding`);
        return undefined;
      case 'ok':
        if (requireBinding && !bound)
          return channelBindingRequired(
            input,
            'authenticated the client without a channel-bound SCRAM exchange',
          );
        return undefined;
    }
  };
}

function label(kind: 'cleartext' | 'md5'): string {
  return kind === 'md5' ? 'an MD5 password hash' : 'a cleartext password';
}

function insecurePasswordAuth(input: AuthPolicyInput, kind: 'cleartext' | 'md5'): Error {
  const over = input.tls ? 'a TLS connection whose certificate was not verified' : 'a connection without TLS';
  return Object.assign(
    new Error(
      `Refused to send ${label(kind)} to ${input.where}: the server asked for it over ${over} ` +
        `(sslMode=${input.sslMode}), where anyone on the network path could take it. Use ` +
        'sslMode=verify-full (DB_SSLMODE) with the server CA in DB_SSL_ROOT_CERT, or a SCRAM password ' +
        "(password_encryption = 'scram-sha-256'), or accept the risk with " +
        'database.postgres.allowInsecurePasswordAuth (DB_ALLOW_INSECURE_AUTH=true).',
    ),
    { code: 'INSECURE_PASSWORD_AUTH' },
  );
}

function channelBindingRequired(input: AuthPolicyInput, what: string): Error {
  return Object.assign(
    new Error(
      `Channel binding is required (database.postgres.channelBinding=require, DB_CHANNEL_BINDING), ` +
        `but the server at ${input.where} ${what}; it needs TLS and a SCRAM-SHA-256 password.`,
    ),
    { code: 'CHANNEL_BINDING_REQUIRED' },
  );
}
