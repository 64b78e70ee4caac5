import type { ConnectionOptions } from 'node:tls';
import type { SslMode } from '../../config/app-config.js';

/** How to open connections for one `sslMode`. */
export interface SslPlan {
  /** pg's `ssl` option for the first try: `false` (plain TCP) or TLS options. */
  ssl: false | ConnectionOptions;
  /** `prefer` only: when the server refuses TLS, open a plain connection instead. */
  fallbackToPlain: boolean;
  /**
   * The server's certificate chain is checked against trusted CAs (verify-ca, verify-full, and
   * require with a root certificate): only then may a cleartext or MD5 password request be
   * answered without `allowInsecurePasswordAuth`.
   */
  verified: boolean;
}

/**
 * Maps libpq's `sslmode` onto pg's `ssl` option. We map it ourselves because pg's and
 * knex's URL parsers disagree on `sslmode=require` (one verifies, one does not).
 *
 * - `disable`: plain TCP.
 * - `prefer`: TLS without verification; if the server answers the SSLRequest with "no TLS",
 *   a new plain connection is opened (pg cannot continue in plain text on the same socket as
 *   libpq does). A TLS handshake that fails for another reason is an error, not a fallback.
 *   The decision is per connection: the opener asks for TLS first every time.
 * - `require`: TLS, no verification (encryption against passive eavesdropping only). As in
 *   libpq, when a root certificate is given, `require` verifies the chain like `verify-ca`.
 * - `verify-ca`: TLS; the chain must lead to `ca`; the host name is not checked.
 * - `verify-full`: TLS; the chain must lead to `ca` and the certificate must name the host.
 *
 * @param ca - PEM text of the CA certificate(s) from `sslRootCert`; when absent, the verify
 *   modes trust Node's built-in CA list (public CAs), not libpq's `~/.postgresql/root.crt`.
 */
export function sslOptions(mode: SslMode, ca?: string): SslPlan {
  switch (mode) {
    case 'disable':
      return { ssl: false, fallbackToPlain: false, verified: false };
    case 'prefer':
      return { ssl: { rejectUnauthorized: false }, fallbackToPlain: true, verified: false };
    case 'require':
      return ca
        ? verifyCa(ca)
        : { ssl: { rejectUnauthorized: false }, fallbackToPlain: false, verified: false };
    case 'verify-ca':
      return verifyCa(ca);
    case 'verify-full':
      return {
        ssl: { rejectUnauthorized: true, ...(ca ? { ca } : {}) },
        fallbackToPlain: false,
        verified: true,
      };
  }
}

function verifyCa(ca: string | undefined): SslPlan {
  return {
    ssl: {
      rejectUnauthorized: true,
      ...(ca ? { ca } : {}),
      // The chain is still verified by Node; only the host-name comparison is skipped.
      checkServerIdentity: () => undefined,
    },
    fallbackToPlain: false,
    verified: true,
  };
}

/** pg's message when the server answers the SSLRequest with "no TLS here". */
export const TLS_REFUSED_MESSAGE = /does not support SSL/i;

/** True when `err` says the server answered the SSLRequest with "no TLS here". */
export function isTlsRefused(err: unknown): boolean {
  return err instanceof Error && TLS_REFUSED_MESSAGE.test(err.message);
}
