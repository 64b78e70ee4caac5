import type { AppConfig } from './app-config.js';

/** What a set secret is printed as. */
export const REDACTED = '[REDACTED]';

/**
 * A plain, mutable copy of the config for printing or logging, with each password shown as
 * `'[REDACTED]'` when it is set and `''` when it is not (so "is a password configured?" stays
 * visible). The config itself already hides its passwords from JSON.stringify and util.inspect;
 * this makes the redaction explicit and keeps the key in the output.
 */
export function redactConfig(config: AppConfig): AppConfig {
  const copy = JSON.parse(JSON.stringify(config)) as AppConfig;
  copy.database.postgres.password = config.database.postgres.password ? REDACTED : '';
  copy.database.migrations.password = config.database.migrations.password ? REDACTED : '';
  copy.server.cursorSecret = config.server.cursorSecret ? REDACTED : '';
  return copy;
}
