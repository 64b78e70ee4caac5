import type { PgConnectionOpener, PooledPgClient } from './pg-connection-opener.js';
import { describeError } from './pg-connection-opener.js';

/** What one probe of the server found. */
export type ProbeResult = { ok: true; version: string; inRecovery: boolean } | { ok: false; error: string };

/** `select 1`, the server version and the recovery flag, in ONE round trip. */
const PROBE_SQL = 'select 1 as ok, version() as version, pg_is_in_recovery() as in_recovery';

/**
 * Probes the server on a dedicated short-lived connection (not the pool, so it answers
 * while every pool connection is busy or the pool is exhausted), bounded by `timeoutMs`
 * from start to finish: connect, authenticate and one query. Never throws; on expiry the
 * connection is destroyed, never left behind.
 *
 * @returns the short version (e.g. "PostgreSQL 18.4") and `pg_is_in_recovery()`, or a
 *   secret-free error text.
 */
export async function probeServer(opener: PgConnectionOpener, timeoutMs: number): Promise<ProbeResult> {
  let client: PooledPgClient | undefined;
  let timer: NodeJS.Timeout | undefined;
  let finished = false;
  const deadline = new Promise<ProbeResult>((resolve) => {
    timer = setTimeout(
      () => resolve({ ok: false, error: `health check timed out after ${timeoutMs} ms` }),
      timeoutMs,
    );
  });
  const run = async (): Promise<ProbeResult> => {
    client = await opener.open(timeoutMs);
    if (finished) {
      void closeQuietly(client); // connected just after the deadline
      return { ok: false, error: 'late' };
    }
    const { rows } = await client.query<{ version: string; in_recovery: boolean }>(PROBE_SQL);
    const row = rows[0];
    if (!row) return { ok: false, error: 'health query returned no row' };
    return { ok: true, version: shortVersion(row.version), inRecovery: row.in_recovery };
  };
  try {
    return await Promise.race([
      run().catch((err: unknown): ProbeResult => {
        const { code, message } = describeError(err);
        return { ok: false, error: code ? `${code}: ${message}` : message };
      }),
      deadline,
    ]);
  } finally {
    finished = true;
    clearTimeout(timer);
    // A still-running query or connect is cut off (pg's end() destroys the socket then).
    void closeQuietly(client);
  }
}

async function closeQuietly(client: PooledPgClient | undefined): Promise<void> {
  try {
    await client?.end();
  } catch {
    // already broken; nothing to release
  }
}

/** "PostgreSQL 18.4 on x86_64-pc-linux-gnu, ..." -> "PostgreSQL 18.4". */
function shortVersion(full: string): string {
  return /^PostgreSQL \S+/.exec(full)?.[0].replace(/,$/, '') ?? full;
}
