import pg from 'pg';

/**
 * Runs `fn` on a short-lived pg `Client` of its own (outside any pool), then ends it: connect,
 * `fn`, `end()` whether `fn` resolved or threw. For one-shot work beside the pool: creating a
 * database, probing whether the server speaks TLS, test fixtures.
 *
 * The client gets an 'error' listener before it connects, so a server restart or a terminated
 * backend while it is open never becomes an uncaught 'error' that crashes the process (pg#2762).
 * A failing `end()` is ignored: the connection is gone either way.
 *
 * @param config pg's client settings; a password is copied by pg into a non-enumerable property.
 * @throws whatever `connect()` or `fn` throws (pg's own errors, unchanged).
 */
export async function withPgClient<T>(
  config: pg.ClientConfig | string,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client(config);
  client.on('error', () => {});
  try {
    await client.connect();
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}
