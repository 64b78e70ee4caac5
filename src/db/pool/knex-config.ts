import type { Knex } from 'knex';
import type { PostgresConfig } from '../../config/app-config.js';
import type { Logger } from '../../observability/logger.js';

/** Lifetime jitter: a tenth of connMaxLifetime, at most a minute, so connections opened together do not all retire together. */
export function lifetimeJitterMs(connMaxLifetime: number): number {
  return Math.min(60_000, Math.floor(connMaxLifetime / 10));
}

/**
 * Idle connections are looked at this often (the `ConnectionCleaner`): half the shorter of
 * connMaxIdleTime and connMaxLifetime, between 50 ms and 1 s, so each limit holds within ~50 %
 * (Go's cleaner runs at that shorter limit, at least every second). 1 s when both are off.
 */
export function reapIntervalMs(connMaxIdleTime: number, connMaxLifetime = 0): number {
  const limits = [connMaxIdleTime, connMaxLifetime].filter((ms) => ms > 0);
  if (limits.length === 0) return 1_000;
  return Math.min(1_000, Math.max(50, Math.floor(Math.min(...limits) / 2)));
}

/** tarn reads 0 as "use my default"; the largest timer value turns its idle reaper off instead. */
const NEVER_MS = 2 ** 31 - 1;

/**
 * The knex configuration for one `PostgresConfig`: knex owns the pool (tarn).
 *
 * | config            | knex / tarn                                                         |
 * |-------------------|---------------------------------------------------------------------|
 * | maxOpenConns      | `pool.max`                                                          |
 * | maxIdleConns      | the `ConnectionCleaner`'s cap (Go's); tarn `min` is 0: no floor     |
 * | connMaxIdleTime   | the `ConnectionCleaner`; tarn's own idle reaper is off              |
 * | connMaxLifetime   | `pool.maxConnectionLifetimeMillis` + `...JitterMillis` (0 = never): |
 * |                   | knex's `validate` at acquire, and the cleaner for idle connections  |
 * | timeout           | `acquireConnectionTimeout`, `pool.createTimeoutMillis`              |
 *
 * The connection carries no password: the pool's connections are opened by
 * `PgConnectionOpener`, which knex calls through `acquireRawConnection`, so neither
 * `knex.client.config` nor any builder can show it. `compileSqlOnError: false` keeps bind
 * values out of error messages.
 */
export function knexConfig(
  cfg: PostgresConfig,
  validate: (connection: unknown) => boolean,
  logger: Logger,
): Knex.Config {
  const max = Math.max(1, cfg.maxOpenConns);
  const lifetime = cfg.connMaxLifetime > 0 ? cfg.connMaxLifetime : undefined;
  return {
    client: 'pg',
    connection: {
      host: cfg.host,
      port: cfg.port,
      database: cfg.name,
      user: cfg.username,
      application_name: cfg.applicationName,
    },
    pool: {
      // No floor, and tarn's reaper never closes anything: maxIdleConns and connMaxIdleTime
      // are Go's cap and idle limit, which the ConnectionCleaner enforces.
      min: 0,
      max,
      idleTimeoutMillis: NEVER_MS,
      reapIntervalMillis: NEVER_MS,
      createTimeoutMillis: cfg.timeout,
      // A create failure rejects the waiting acquire at once instead of waiting out the timeout.
      propagateCreateError: true,
      ...(lifetime
        ? {
            maxConnectionLifetimeMillis: lifetime,
            maxConnectionLifetimeJitterMillis: lifetimeJitterMs(lifetime),
          }
        : {}),
      validate,
    },
    acquireConnectionTimeout: cfg.timeout,
    compileSqlOnError: false,
    log: knexLog(logger),
  };
}

/** knex's own warnings that we already report better (as typed errors, or a warn of our own). */
const REPORTED_BY_US = /^(Acquire connection error|Connection Error): /;

/**
 * Routes knex's console logging into our logger. Acquire failures and broken-connection
 * notices go to debug: the caller gets a typed error, and the opener logs each broken
 * connection once at warn. Only the first line is kept (knex appends stacks).
 */
function knexLog(logger: Logger): NonNullable<Knex.Config['log']> {
  const firstLine = (m: unknown): string => String(m).split('\n')[0] ?? '';
  return {
    warn: (m: unknown) => {
      const line = firstLine(m);
      if (REPORTED_BY_US.test(line)) logger.debug({ source: 'knex' }, line);
      else logger.warn({ source: 'knex' }, line);
    },
    error: (m: unknown) => logger.error({ source: 'knex' }, firstLine(m)),
    deprecate: (method: unknown, alternative: unknown) =>
      logger.warn({ source: 'knex' }, `${String(method)} is deprecated; use ${String(alternative)}`),
    debug: (m: unknown) => logger.debug({ source: 'knex' }, firstLine(m)),
  };
}
