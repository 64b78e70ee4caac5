import type { AppConfig } from './config/app-config.js';
import { ConfigError } from './config/config-error.js';
import { hidePassword } from './config/hide-password.js';
import type { PostgresDatabase } from './db/postgres-database.js';
import type { Logger } from './observability/logger.js';

/** The configuration keys a running service applies without a restart. */
const RELOADABLE_KEYS = ['database.postgres.maxOpenConns', 'database.postgres.maxIdleConns'] as const;

/**
 * Applies a re-read configuration to a running service (the service does it on SIGHUP):
 * `database.postgres.maxOpenConns` and `maxIdleConns` resize the pool at once
 * (`PostgresDatabase.resizePool`); every other changed key is logged by name (never by value:
 * it may be a secret) as needing a restart, and is not applied.
 * @param running The configuration the service runs with (the last one this returned).
 * @param load Reads the configuration afresh (`loadConfig`).
 * @returns The configuration the service now runs with: `running` with the pool size applied.
 *   Never throws: a configuration that does not load, or a size the pool refuses, is logged at
 *   error and changes nothing.
 */
export function reloadConfig(
  running: AppConfig,
  load: () => AppConfig,
  db: Pick<PostgresDatabase, 'resizePool'>,
  logger: Logger,
): AppConfig {
  let next: AppConfig;
  try {
    next = load();
  } catch (err) {
    // A ConfigError lists every problem by key path and never carries a secret.
    const issues = err instanceof ConfigError ? err.issues : [String(err)];
    logger.error({ issues }, 'configuration reload failed: nothing changed');
    return running;
  }
  const changed = changedKeys(running, next);
  const needsRestart = changed.filter((k) => !(RELOADABLE_KEYS as readonly string[]).includes(k));
  if (needsRestart.length > 0)
    logger.warn({ keys: needsRestart }, 'configuration reload: these changed keys need a restart to apply');
  const before = running.database.postgres;
  const after = next.database.postgres;
  // An unset maxIdleConns follows a lower maxOpenConns, as at start.
  const size = {
    maxOpenConns: after.maxOpenConns,
    maxIdleConns: Math.min(after.maxIdleConns, after.maxOpenConns),
  };
  if (
    size.maxOpenConns === before.maxOpenConns &&
    size.maxIdleConns === Math.min(before.maxIdleConns, before.maxOpenConns)
  ) {
    logger.info({ changed: changed.length }, 'configuration reloaded: pool size unchanged');
    return running;
  }
  try {
    db.resizePool(size);
  } catch (err) {
    logger.error({ err }, 'configuration reload: the pool refused the new size; nothing changed');
    return running;
  }
  logger.info(
    {
      maxOpenConns: { from: before.maxOpenConns, to: size.maxOpenConns },
      maxIdleConns: { from: Math.min(before.maxIdleConns, before.maxOpenConns), to: size.maxIdleConns },
    },
    'configuration reloaded: pool resized',
  );
  const postgres = hidePassword({ ...before, ...size }, before.password);
  return { ...running, database: { ...running.database, postgres } };
}

/** Dotted paths of the leaves that differ between two configurations (arrays compared whole). */
export function changedKeys(a: unknown, b: unknown, prefix = ''): string[] {
  if (isObject(a) && isObject(b)) {
    // Own names, not keys: a password is a non-enumerable property (compared, never logged).
    const keys = new Set([...Object.getOwnPropertyNames(a), ...Object.getOwnPropertyNames(b)]);
    return [...keys].sort().flatMap((k) => changedKeys(a[k], b[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
