import type pg from 'pg';
import type { TestDatabase } from '../../src/testing/index.js';
import { queryOnce } from './query-once.js';
import { testServer } from './root-hooks.js';

export { postgresConfigFromUrl } from '../../src/testing/index.js';
export type { TestDatabase } from '../../src/testing/index.js';

/** Runs one statement on the server's maintenance database. */
export async function adminQuery(sql: string, values?: unknown[]): Promise<pg.QueryResult> {
  return queryOnce(testServer().adminUrl, sql, values);
}

/** Creates a fresh database from the run's template (migrated and seeded once per run). */
export function createTestDatabase(): Promise<TestDatabase> {
  return testServer().server.createDatabase();
}

/** Databases whose suites have finished, dropped by `dropFinishedDatabases()`. */
const finished: TestDatabase[] = [];

/**
 * Mocha helper: a fresh database for the enclosing `describe`.
 * ```ts
 * const db = useTestDatabase();
 * it('...', () => { const cfg = db().config({ maxOpenConns: 2 }); ... });
 * ```
 * The drop is deferred to the next suite's start (and the end of the run): mocha runs a
 * describe's `after` hooks in the order they were registered, so dropping here would run
 * before the suite's own `after` that closes its pools.
 */
export function useTestDatabase(): () => TestDatabase {
  let current: TestDatabase | undefined;
  before(async () => {
    await dropFinishedDatabases();
    current = await createTestDatabase();
  });
  after(() => {
    if (current) finished.push(current);
  });
  return () => {
    if (!current) throw new Error('useTestDatabase(): the database exists only inside hooks and tests');
    return current;
  };
}

/** Drops the databases of suites that have finished (their pools are closed by now). */
export async function dropFinishedDatabases(): Promise<void> {
  for (const db of finished.splice(0)) await db.drop();
}

/**
 * The `DB_*` environment variables (host, port, name, user, password) that point the config
 * loader or the knex CLI at database `name` on the run's server, as the superuser.
 */
export function serverEnv(name: string): Record<string, string> {
  const url = new URL(testServer().adminUrl);
  return {
    DB_HOST: url.hostname,
    DB_PORT: url.port || '5432',
    DB_NAME: name,
    DB_USER: decodeURIComponent(url.username),
    DB_PASSWORD: decodeURIComponent(url.password),
  };
}
