import type { ClientConfig } from 'pg';
import type { PostgresConfig } from '../../config/app-config.js';

/** The server-side limits, by PostgreSQL setting name, that are on (a limit of 0 is left out). */
function limits(
  cfg: Pick<PostgresConfig, 'statementTimeout' | 'lockTimeout' | 'idleInTransactionSessionTimeout'>,
): Array<[string, number]> {
  const settings: Array<[string, number]> = [
    ['statement_timeout', cfg.statementTimeout],
    ['lock_timeout', cfg.lockTimeout],
    ['idle_in_transaction_session_timeout', cfg.idleInTransactionSessionTimeout],
  ];
  return (
    settings
      .filter(([, ms]) => Number.isFinite(ms) && ms > 0)
      // Integers only: the value is spliced into SQL or the startup packet, so nothing else gets in.
      .map(([name, ms]) => [name, Math.floor(ms)])
  );
}

/**
 * The `options` startup parameter that applies our server-side safety limits to every new
 * connection, e.g. `-c statement_timeout=30000 -c lock_timeout=10000`. Sent in the startup
 * packet, so it costs no extra round trip (a `SET` after connect would). A limit of 0 is
 * left out, which keeps the server's (or role's) own default.
 *
 * None with `poolerMode: 'transaction'`: PgBouncer refuses the `options` parameter
 * ("unsupported startup parameter: options"), and a session setting would stay on a server
 * connection that other clients share; `transactionLocalSettings` applies the limits instead.
 *
 * @returns `undefined` when every limit is 0, or in transaction pooling mode.
 */
export function startupOptions(
  cfg: Pick<PostgresConfig, 'statementTimeout' | 'lockTimeout' | 'idleInTransactionSessionTimeout'> &
    Partial<Pick<PostgresConfig, 'poolerMode'>>,
): string | undefined {
  if (cfg.poolerMode === 'transaction') return undefined;
  const parts = limits(cfg).map(([name, ms]) => `-c ${name}=${ms}`);
  return parts.length > 0 ? parts.join(' ') : undefined;
}

/**
 * The limits as transaction-local settings, for transaction pooling mode, e.g.
 * `SET LOCAL statement_timeout = 30000; SET LOCAL lock_timeout = 10000`: appended to each
 * BEGIN in the same simple-query message (no extra round trip), they bound every statement of
 * the transaction and end with it, so nothing stays on the shared server connection. `SET`
 * takes no snapshot, so a `SET TRANSACTION` may still follow.
 *
 * @returns `undefined` when every limit is 0.
 */
export function transactionLocalSettings(
  cfg: Pick<PostgresConfig, 'statementTimeout' | 'lockTimeout' | 'idleInTransactionSessionTimeout'>,
): string | undefined {
  const parts = limits(cfg).map(([name, ms]) => `SET LOCAL ${name} = ${ms}`);
  return parts.length > 0 ? parts.join('; ') : undefined;
}

/**
 * Whether repositories may run named prepared statements: `preparedStatements`, and never in
 * transaction pooling mode. A named statement lives in one server session, and PgBouncer 1.18
 * hands the next transaction to any server connection, where the name is unknown (or names
 * another client's statement). PgBouncer >= 1.21 can track them (`max_prepared_statements`),
 * but this layer does not rely on it: off is correct on every version.
 */
export function namedStatementsAllowed(
  cfg: Pick<PostgresConfig, 'preparedStatements' | 'poolerMode'>,
): boolean {
  return cfg.preparedStatements && cfg.poolerMode !== 'transaction';
}

/** Idle time before the first TCP keepalive probe, ms. */
const KEEPALIVE_IDLE_MS = 15_000;

/**
 * pg `Client` settings for one new connection, from discrete fields: never a connection
 * string, because pg and knex keep a URL (password included) where `util.inspect` shows it.
 * The password is not part of the result; the caller adds it to a short-lived object that
 * pg copies into a non-enumerable property.
 *
 * - `keepAlive: true` with a first probe after 15 s idle (Go's `net.Dialer` default) lets the
 *   OS notice a dead peer on an idle connection; pg's default delay of 0 leaves the OS's own,
 *   two hours on Linux. Probes then follow the OS's interval and count (Linux: 75 s x 9), and a
 *   statement in flight into a partition is bounded by TCP's retransmission timeout (about 15
 *   min) unless a transaction deadline is set (`timeoutMs`, `defaultTimeout`): see
 *   docs/failure-modes.md.
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
    keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS,
    connectionTimeoutMillis: cfg.timeout,
    ...(options ? { options } : {}),
  };
}
