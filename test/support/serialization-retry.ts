import { withPgClient } from '../../src/db/connection/with-pg-client.js';
import { waitFor } from './service-fixture.js';

/**
 * Sends `PATCH /users/:id` (`If-Match: "1"`, a new name) so that its repeatable-read
 * transaction fails with a real serialization failure (40001) once and is retried: another
 * session updates the row (without moving the version) and holds its lock until the PATCH
 * waits on it, then commits. Resolves with the PATCH's response.
 */
export async function patchThroughSerializationRetry(
  serviceUrl: string,
  databaseUrl: string,
  userId: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  let patch: Promise<Response> | undefined;
  await withPgClient(databaseUrl, async (other) => {
    await other.query('begin');
    await other.query('update users set name = name where id = $1', [userId]);
    patch = fetch(`${serviceUrl}/users/${userId}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json', 'if-match': '"1"', ...headers },
      body: JSON.stringify({ name: 'Retried' }),
    });
    await waitFor(
      async () => {
        const { rows } = await other.query<{ n: string }>(
          `select count(*) as n from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()`,
        );
        return Number(rows[0]!.n) === 1;
      },
      5_000,
      'the PATCH to wait for the row lock',
    );
    await other.query('commit');
  });
  return patch!;
}
