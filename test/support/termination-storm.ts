import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';

/** A running termination storm: `stop()` ends it and tells how many backends it killed (idempotent). */
export interface TerminationStorm {
  stop(): Promise<{ rounds: number; terminated: number }>;
}

/**
 * Starts killing every client backend of `database` with `pg_terminate_backend`, again and
 * again, with a pause of `minPauseMs`..`maxPauseMs` (uniform) between rounds, from a
 * connection of its own outside any pool (to `adminUrl`, which must not point at `database`,
 * and which the storm spares). A round that fails ends the storm: `stop()` rethrows its error.
 */
export async function startTerminationStorm(
  adminUrl: string,
  database: string,
  { minPauseMs = 20, maxPauseMs = 50 }: { minPauseMs?: number; maxPauseMs?: number } = {},
): Promise<TerminationStorm> {
  const killer = new pg.Client({ connectionString: adminUrl });
  killer.on('error', () => {}); // pg#2762: an idle client's error must not crash the run
  await killer.connect();
  let stopping = false;
  let rounds = 0;
  let terminated = 0;
  const loop = (async () => {
    while (!stopping) {
      const { rows } = await killer.query<{ killed: boolean }>(
        `select pg_terminate_backend(pid) as killed from pg_stat_activity
          where datname = $1 and pid <> pg_backend_pid() and backend_type = 'client backend'`,
        [database],
      );
      rounds++;
      terminated += rows.filter((r) => r.killed).length;
      await delay(minPauseMs + Math.random() * (maxPauseMs - minPauseMs));
    }
  })();
  loop.catch(() => {}); // rethrown by stop(); until then it must not count as unhandled
  let stopped: Promise<{ rounds: number; terminated: number }> | undefined;
  const stop = async (): Promise<{ rounds: number; terminated: number }> => {
    stopping = true;
    try {
      await loop;
    } finally {
      await killer.end().catch(() => {});
    }
    return { rounds, terminated };
  };
  return { stop: () => (stopped ??= stop()) };
}
