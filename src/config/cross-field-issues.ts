import { parseDuration } from './parse-duration.js';
import { fromSource, type SourceMap } from './format-issues.js';
import { getPath } from './merge-layers.js';

/** Rules `b` must satisfy relative to `a`; checked on the merged layers, whatever else is wrong. */
const AT_MOST: ReadonlyArray<readonly [lower: string, upper: string, kind: 'int' | 'duration']> = [
  ['database.postgres.maxIdleConns', 'database.postgres.maxOpenConns', 'int'],
  ['database.postgres.retryDelay', 'database.postgres.maxRetryDelay', 'duration'],
  ['database.transactions.baseDelay', 'database.transactions.maxDelay', 'duration'],
];

/**
 * The rules that span keys, and the production profile's requirements. They run on the merged,
 * not yet validated values (skipping any value that is itself invalid; the schema reports that
 * one), so that they are reported together with every other problem.
 */
export function crossFieldIssues(
  merged: Record<string, unknown>,
  profile: string,
  sources: SourceMap,
): string[] {
  const issues: string[] = [];
  for (const [lower, upper, kind] of AT_MOST) {
    const low = valueOf(merged, lower, kind);
    const high = valueOf(merged, upper, kind);
    if (low !== undefined && high !== undefined && low > high) {
      const upperKey = upper.slice(upper.lastIndexOf('.') + 1);
      issues.push(
        `${lower}: must be at most ${upperKey} (${high}) (got ${low})${fromSource(lower, sources)}`,
      );
    }
  }
  const migrationsPassword = getPath(merged, 'database.migrations.password');
  if (migrationsPassword && !getPath(merged, 'database.migrations.username')) {
    issues.push('database.migrations.password: is set but database.migrations.username is empty');
  }
  if (profile === 'production') {
    const host = getPath(merged, 'database.postgres.host');
    if (host === '') {
      issues.push(
        'database.postgres.host: must be set in the production profile ' +
          '(empty means an embedded PostgreSQL, for development and tests only)',
      );
    } else if (typeof host === 'string' && getPath(merged, 'database.postgres.password') === '') {
      issues.push(
        'database.postgres.password: must be set in the production profile ' +
          '(DB_PASSWORD, DB_PASSWORD_FILE or DATABASE_URL)',
      );
    }
  }
  return issues;
}

function valueOf(root: unknown, path: string, kind: 'int' | 'duration'): number | undefined {
  const value = getPath(root, path);
  if (kind === 'int') return Number.isInteger(value) ? (value as number) : undefined;
  const parsed = parseDuration(value);
  return 'ms' in parsed ? parsed.ms : undefined;
}
