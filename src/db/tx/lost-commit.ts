import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../../observability/logger.js';
import type { IsolationLevel } from '../database.js';
import { sqlStateOf } from '../errors/classify-error.js';
import { CommitAbortedError, CommitUnknownError, type TransactionTimeoutError } from '../errors/errors.js';
import { SQLSTATE } from '../errors/sql-states.js';
import { withTimeout } from '../with-timeout.js';
import type { InnerQuery } from './tx-connection.js';

/*
 * A COMMIT whose connection is lost: what it did is learned, never guessed. A connection lost
 * around COMMIT reports ECONNRESET, "Connection terminated unexpectedly" or "not queryable",
 * with no SQLSTATE, and the transaction had often committed all the same; pg_xact_status on a
 * fresh connection tells the truth. The xid is recorded right before COMMIT to ask it.
 */

/** What was learned before COMMIT: the xid (null: none assigned), or that the transaction had already failed. */
export type RecordedXid = { xid: string | null; aborted: boolean };

/** A read-only transaction: no xid can be assigned, so a lost COMMIT loses nothing. */
export const NOTHING_WRITTEN: RecordedXid = { xid: null, aborted: false };

/** Default bound on learning a lost COMMIT's outcome, ms. */
const LOOKUP_TIMEOUT_MS = 5_000;

/** What resolving a lost COMMIT needs from its transaction (built only when a COMMIT is lost). */
export interface LostCommitLookup {
  /** The transaction's deadline, read when needed (it may pass during the lookup). */
  tx: { readonly expired: boolean; timeoutError(cause?: unknown): TransactionTimeoutError };
  isolationLevel: IsolationLevel | undefined;
  /** Opens a fresh connection (outside the pool) for the lookup. */
  open: () => Promise<LookupConnection>;
  /** The lost connection's backend pid, if known. */
  pid: number | undefined;
  /** Bound on the lookup, ms. Default 5 s. */
  timeoutMs: number | undefined;
  logger: Logger;
  /** Told what the lookup found, before it settles. */
  onOutcome?: ((outcome: CommitOutcome) => void) | undefined;
}

/**
 * Records the transaction's xid right before COMMIT (one round trip), for a transaction that
 * did not take it with BEGIN (`XID_AT_BEGIN`). `aborted` when the transaction had already
 * failed (25P02); `xid` null when none was assigned. Why not in COMMIT's own message, nor
 * skipped: docs/benchmarks.md (the xid with BEGIN).
 */
export async function recordXid(inner: InnerQuery): Promise<RecordedXid> {
  try {
    const res = await inner('select pg_current_xact_id_if_assigned()::text as xid');
    return { xid: (res.response?.rows?.[0]?.xid as string | null) ?? null, aborted: false };
  } catch (err) {
    // 25P02: a swallowed failure aborted the transaction; COMMIT will say ROLLBACK.
    if (sqlStateOf(err) === SQLSTATE.inFailedSqlTransaction) return { xid: null, aborted: true };
    throw err;
  }
}

/**
 * Decides what a COMMIT whose connection was lost did: returns when it committed (or wrote
 * nothing outside serializable), asks `pg_xact_status` on a fresh connection for the recorded xid
 * otherwise.
 * @throws CommitAbortedError when it certainly did not commit (safe to re-run);
 *   TransactionTimeoutError instead once the deadline has passed; CommitUnknownError when
 *   the outcome cannot be learned (no xid recorded: `resolveLostCommit` off, or no answer).
 */
export async function resolveLostCommit(
  recorded: RecordedXid | undefined,
  cause: unknown,
  lookup: LostCommitLookup,
): Promise<void> {
  if (recorded === undefined)
    throw new CommitUnknownError(
      'The connection was lost during COMMIT; its outcome is unknown (no xid was recorded: resolveLostCommit is off).',
      { cause },
    );
  const { xid, aborted } = recorded;
  const { tx, logger } = lookup;
  if (xid === null) {
    // No xid: nothing was written, so there is nothing to lose. Under serializable, COMMIT
    // may still have failed the read-only-anomaly check, so the result is not trusted.
    if (!aborted && lookup.isolationLevel !== 'serializable') return;
    if (tx.expired) throw tx.timeoutError(cause);
    throw new CommitAbortedError('The connection was lost at COMMIT of a transaction that wrote nothing.', {
      cause,
    });
  }
  const outcome = await lookupCommitOutcome({
    open: lookup.open,
    xid,
    ...(lookup.pid ? { pid: lookup.pid } : {}),
    timeoutMs: lookup.timeoutMs ?? LOOKUP_TIMEOUT_MS,
  });
  logger.warn({ xid, outcome }, 'connection lost during COMMIT; outcome looked up with pg_xact_status');
  lookup.onOutcome?.(outcome);
  if (outcome === 'committed') return;
  if (outcome === 'aborted') {
    if (tx.expired) throw tx.timeoutError(cause);
    throw new CommitAbortedError('The connection was lost during COMMIT; the transaction was rolled back.', {
      cause,
    });
  }
  throw new CommitUnknownError(
    'The connection was lost during COMMIT and its outcome could not be learned.',
    {
      xid,
      cause,
    },
  );
}

/** What became of a transaction whose COMMIT got no answer. */
export type CommitOutcome = 'committed' | 'aborted' | 'unknown';

/** The little of a pg Client the lookup needs. */
export interface LookupConnection {
  query(sql: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  end(): Promise<void>;
}

/** How to reach the server for the lookup, and how long to try. */
interface CommitOutcomeOptions {
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
 * flight, from `pg_xact_status(xid)` on a fresh connection. Measured on a real server: in two
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
async function lookupCommitOutcome(opts: CommitOutcomeOptions): Promise<CommitOutcome> {
  const started = performance.now();
  const left = (): number => opts.timeoutMs - (performance.now() - started);
  let terminated = false;
  while (left() > 0) {
    let conn: LookupConnection | undefined;
    try {
      conn = await withTimeout(opts.open(), left(), (late) => void late.end().catch(() => {}));
      for (;;) {
        const { rows } = await withTimeout(
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

/**
 * The select-list item that assigns and returns the xid in BEGIN's own message
 * (`BEGIN; select pg_current_xact_id()::text as xid, ...`), saving the round trip of
 * `recordXid`. The price, paid only by read-write transactions with lost-COMMIT resolution on:
 * one that writes nothing still consumes an xid (wraparound/freeze pressure) and its COMMIT
 * writes a commit record and waits for its WAL flush (see docs/benchmarks.md for the numbers).
 * On a standby it fails with 25006 (a failover, retried as one).
 */
export const XID_AT_BEGIN = 'pg_current_xact_id()::text as xid';

/** The xid that `XID_AT_BEGIN` returned in `result` (undefined when it is not there). */
export function xidOf(result: { rows?: Record<string, unknown>[] } | undefined): RecordedXid | undefined {
  const xid = result?.rows?.[0]?.xid;
  return typeof xid === 'string' ? { xid, aborted: false } : undefined;
}
