import { setTimeout as delay } from 'node:timers/promises';
import { sqlStateOf } from '../errors/classify-error.js';

/** What became of a transaction whose COMMIT got no answer. */
export type CommitOutcome = 'committed' | 'aborted' | 'unknown';

/** The little of a pg Client the lookup needs. */
export interface LookupConnection {
  query(sql: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  end(): Promise<void>;
}

/** How to reach the server for the lookup, and how long to try. */
export interface CommitOutcomeOptions {
  /** Opens a fresh connection outside the pool (the pool may be exhausted or broken). */
  open(): Promise<LookupConnection>;
  /** The transaction id recorded before COMMIT (`pg_current_xact_id()`, xid8 as text). */
  xid: string;
  /** The backend that ran the transaction: ended if it still holds the transaction open. */
  pid?: number;
  /** Bound on the whole lookup, connects included, ms. */
  timeoutMs: number;
}

const POLL_MS = 50;
/** A backend still "in progress" this long after losing its client is ended so the answer is final. */
const TERMINATE_AFTER_MS = 500;

/**
 * Finds out what happened to a transaction whose connection was lost while COMMIT was in
 * flight, from `pg_xact_status(xid)` on a fresh connection. PITFALLS ("Observed here"): in two
 * cases of three the transaction had committed, and pg_xact_status told the truth every time.
 *
 * - 'committed' / 'aborted': the server's own record.
 * - 'in progress': the backend has not noticed its client is gone (COMMIT never reached it,
 *   or a network partition). It is polled; after 500 ms the backend is ended with
 *   `pg_terminate_backend` (only if it still runs that very transaction), which makes the
 *   outcome final (aborted, unless COMMIT won the race).
 * - 'unknown': no connection could be opened, the xid is too old to look up (NULL), or the
 *   time ran out. Never throws.
 */
export async function lookupCommitOutcome(opts: CommitOutcomeOptions): Promise<CommitOutcome> {
  const started = performance.now();
  const left = (): number => opts.timeoutMs - (performance.now() - started);
  let terminated = false;
  while (left() > 0) {
    let conn: LookupConnection | undefined;
    try {
      conn = await withDeadline(opts.open(), left(), (late) => void late.end().catch(() => {}));
      for (;;) {
        const { rows } = await withDeadline(
          conn.query('select pg_xact_status($1::xid8) as status', [opts.xid]),
          left(),
        );
        const status = rows[0]?.status;
        if (status === 'committed' || status === 'aborted') return status;
        if (status !== 'in progress' || left() <= POLL_MS) return 'unknown';
        if (!terminated && opts.pid !== undefined && performance.now() - started >= TERMINATE_AFTER_MS) {
          terminated = true;
          await conn.query(
            `select pg_terminate_backend(pid, 1000) from pg_stat_activity
              where pid = $1 and backend_xid::text::numeric = ($2::text::numeric % 4294967296)`,
            [opts.pid, opts.xid],
          );
        }
        await delay(POLL_MS);
      }
    } catch (err) {
      // The server answered with an error (say, an xid "in the future"): asking again will not help.
      if (conn && sqlStateOf(err)) return 'unknown';
      // No connection (the server may be restarting): try again while time remains.
      await delay(Math.min(POLL_MS * 2, Math.max(0, left())));
    } finally {
      void conn?.end().catch(() => {});
    }
  }
  return 'unknown';
}

/** Rejects at the deadline; a result arriving later goes to `onLate` (e.g. to close a late connection). */
function withDeadline<T>(p: Promise<T>, ms: number, onLate?: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const timer = setTimeout(
      () => {
        done = true;
        reject(new Error('commit outcome lookup timed out'));
      },
      Math.max(0, ms),
    );
    p.then(
      (value) => {
        clearTimeout(timer);
        if (done) onLate?.(value);
        else resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        if (!done) reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
