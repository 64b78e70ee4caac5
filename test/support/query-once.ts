import type pg from 'pg';
import { withPgClient } from '../../src/db/connection/with-pg-client.js';

/**
 * Runs one statement on a connection of its own (opened, queried, ended), so a test can look
 * at the data from outside the pool and the transactions under test.
 *
 * @param server a connection URL or pg's client settings.
 */
export async function queryOnce<R extends pg.QueryResultRow = Record<string, unknown>>(
  server: string | pg.ClientConfig,
  sql: string,
  values?: unknown[],
): Promise<pg.QueryResult<R>> {
  return withPgClient(server, (client) => client.query<R>(sql, values));
}
