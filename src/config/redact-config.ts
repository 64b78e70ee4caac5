import type { AppConfig } from './app-config.js';
import { DEFAULTS } from './defaults.js';

/** What a set secret is printed as. */
export const REDACTED = '[REDACTED]';

/** Key names whose values an application section keeps secret (`apiKey`, `clientSecret`, `token`, ...). */
const SECRET_NAME = /pass(word|phrase)?|secret|token|api_?key|private_?key|credential/i;

/**
 * A plain, mutable copy of the config for printing or logging, with each password shown as
 * `'[REDACTED]'` when it is set and `''` when it is not (so "is a password configured?" stays
 * visible). The config itself already hides its passwords from JSON.stringify and util.inspect;
 * this makes the redaction explicit and keeps the key in the output. In the application's own
 * sections (see `loadConfig`'s `sections`), every value under a key named like a secret
 * (password, secret, token, apiKey, privateKey, credentials) is redacted the same way.
 */
export function redactConfig<C extends AppConfig>(config: C): C {
  const copy = JSON.parse(JSON.stringify(config)) as C;
  copy.database.postgres.password = config.database.postgres.password ? REDACTED : '';
  copy.database.migrations.password = config.database.migrations.password ? REDACTED : '';
  copy.server.cursorSecret = config.server.cursorSecret ? REDACTED : '';
  for (const key of Object.keys(copy)) {
    if (key !== 'profile' && !Object.hasOwn(DEFAULTS, key))
      redactSecrets(copy as Record<string, unknown>, key);
  }
  return copy;
}

function redactSecrets(parent: Record<string, unknown>, key: string): void {
  const value = parent[key];
  if (SECRET_NAME.test(key) && value !== '' && value !== null && value !== undefined) {
    parent[key] = REDACTED;
  } else if (typeof value === 'object' && value !== null) {
    for (const child of Object.keys(value)) redactSecrets(value as Record<string, unknown>, child);
  }
}
