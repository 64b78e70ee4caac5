import type { ClientConfig } from 'pg';
import type { PostgresConfig } from '../../config/app-config.js';

/**
 * The `options` startup parameter that applies our server-side safety limits to every new
 * connection, e.g. `-c statement_timeout=30000 -c lock_timeout=10000`. Sent in the startup
 * packet, so it costs no extra round trip (a `SET` after connect would). A limit of 0 is
 * left out, which keeps the server's (or role's) own default.
 *
 * @returns `undefined` when every limit is 0.
 */
export function startupOptions(
  cfg: Pick<PostgresConfig, 'statementTimeout' | 'lockTimeout' | 'idleInTransactionSessionTimeout'>,
): string | undefined {
  const settings: Array<[string, number]> = [
    ['statement_timeout', cfg.statementTimeout],
    ['lock_timeout', cfg.lockTimeout],
    ['idle_in_transaction_session_timeout', cfg.idleInTransactionSessionTimeout],
  ];
  const parts = settings
    .filter(([, ms]) => Number.isFinite(ms) && ms > 0)
    // Integers only: the value is spliced into the startup packet, so nothing else gets in.
    .map(([name, ms]) => `-c ${name}=${Math.floor(ms)}`);
  return parts.length > 0 ? parts.join(' ') : undefined;
}

/**
 * pg `Client` settings for one new connection, from discrete fields: never a connection
 * string, because pg and knex keep a URL (password included) where `util.inspect` shows it.
 * The password is not part of the result; the caller adds it to a short-lived object that
 * pg copies into a non-enumerable property.
 *
 * - `keepAlive: true` lets the OS notice a dead peer on an idle connection.
 * - `connectionTimeoutMillis` = `timeout`; pg ignores it during a DNS stall (pg#3197), so
 *   the opener also keeps its own deadline.
 */
export function pgClientConfig(cfg: PostgresConfig): Omit<ClientConfig, 'password' | 'ssl'> {
  const options = startupOptions(cfg);
  return {
    host: cfg.host,
    port: cfg.port,
    database: cfg.name,
    user: cfg.username,
    application_name: cfg.applicationName,
    keepAlive: true,
    connectionTimeoutMillis: cfg.timeout,
    ...(options ? { options } : {}),
  };
}
