import pg from 'pg';
import type { PostgresConfig } from '../../config/app-config.js';
import { formatHostPort } from '../../config/host-port.js';
import { guardAuthentication } from '../knex-internals.js';
import { authRequestCheck } from './auth-policy.js';
import type { SslPlan } from './ssl-options.js';

/** The settings `guardedPgClientClass` decides by. */
export type AuthGuardSettings = Pick<
  PostgresConfig,
  'channelBinding' | 'allowInsecurePasswordAuth' | 'sslMode'
>;

/**
 * A pg `Client` class whose every instance answers authentication requests under this layer's
 * rules (`authRequestCheck`: no cleartext or MD5 password over an unverified connection unless
 * `allowInsecurePasswordAuth`, `channelBinding`), decided per instance from its own `ssl`
 * option (false: plain TCP) and host. The settings passed to it should carry
 * `enableChannelBinding` (unless `channelBinding` is `disable`). For connections that knex
 * opens itself (the migration CLI), where no opener runs.
 * @throws Error at construction when the installed pg lacks the members the guard needs.
 */
export function guardedPgClientClass(settings: AuthGuardSettings, plan: SslPlan): typeof pg.Client {
  return class GuardedPgClient extends pg.Client {
    constructor(config: pg.ClientConfig) {
      // As given: a spread copy would drop the hidden password.
      super(config);
      const tls = Boolean(config.ssl);
      const host = config.host ?? '';
      const check = authRequestCheck({
        tls,
        verified: tls && plan.verified,
        host,
        channelBinding: settings.channelBinding,
        allowInsecurePasswordAuth: settings.allowInsecurePasswordAuth,
        sslMode: settings.sslMode,
        where: formatHostPort({ host, port: config.port ?? 5432 }),
      });
      if (!guardAuthentication(this, check))
        throw new Error('The installed pg lacks the authentication handlers this layer guards.');
    }
  };
}
