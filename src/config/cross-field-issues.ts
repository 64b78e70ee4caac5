import type { z } from 'zod';
import { configSchema } from './config-schema.js';
import { fromSource, type SourceMap } from './format-issues.js';
import { getPath } from './merge-layers.js';

/** Pairs where the first key must not exceed the second. */
const AT_MOST: ReadonlyArray<readonly [lower: string, upper: string]> = [
  ['database.postgres.maxIdleConns', 'database.postgres.maxOpenConns'],
  ['database.postgres.retryDelay', 'database.postgres.maxRetryDelay'],
  ['database.transactions.baseDelay', 'database.transactions.maxDelay'],
];

/**
 * The rules that span keys, and the production profile's requirements. They run on the merged,
 * not yet validated values, so they are reported together with every other problem (zod skips
 * an object's refinements once one of its fields fails). A rule is skipped when one of its
 * values is itself invalid: the schema reports that one.
 */
export function crossFieldIssues(
  merged: Record<string, unknown>,
  profile: string,
  sources: SourceMap,
): string[] {
  const issues: string[] = [];
  for (const [lower, upper] of AT_MOST) {
    // maxIdleConns left at its default follows a lower maxOpenConns, as Go's SetMaxOpenConns lowers MaxIdleConns.
    if (lower === 'database.postgres.maxIdleConns' && !sources.get(lower)) continue;
    const low = validValue(merged, lower);
    const high = validValue(merged, upper);
    if (typeof low === 'number' && typeof high === 'number' && low > high) {
      const upperKey = upper.slice(upper.lastIndexOf('.') + 1);
      issues.push(
        `${lower}: must be at most ${upperKey} (${high}) (got ${low})${fromSource(lower, sources)}`,
      );
    }
  }
  if (
    validValue(merged, 'database.migrations.password') &&
    validValue(merged, 'database.migrations.username') === ''
  ) {
    issues.push('database.migrations.password: is set but database.migrations.username is empty');
  }
  // libpq refuses this pair at connect time; a channel binding needs TLS, so say it at load.
  if (
    validValue(merged, 'database.postgres.channelBinding') === 'require' &&
    validValue(merged, 'database.postgres.sslMode') === 'disable'
  ) {
    issues.push(
      'database.postgres.channelBinding: require needs TLS, but sslMode is disable' +
        fromSource('database.postgres.channelBinding', sources),
    );
  }
  if (profile === 'production') {
    const host = validValue(merged, 'database.postgres.host');
    const hosts = validValue(merged, 'database.postgres.hosts');
    if (host === '' && !(Array.isArray(hosts) && hosts.length > 0)) {
      issues.push(
        'database.postgres.host: must be set in the production profile ' +
          '(empty means an embedded PostgreSQL, for development and tests only)',
      );
    } else if (host !== undefined && validValue(merged, 'database.postgres.password') === '') {
      issues.push(
        'database.postgres.password: must be set in the production profile ' +
          '(DB_PASSWORD, DB_PASSWORD_FILE or DATABASE_URL)',
      );
    }
  }
  return issues;
}

/** The value at `path` as its own schema parses it (durations in ms), or undefined if invalid. */
function validValue(merged: Record<string, unknown>, path: string): unknown {
  let schema: z.ZodType = configSchema;
  for (const key of path.split('.')) schema = (schema as z.ZodObject).shape[key] as z.ZodType;
  const result = schema.safeParse(getPath(merged, path));
  return result.success ? result.data : undefined;
}
