import type { Logger } from '../../observability/logger.js';
import { sqlStateOf } from '../errors/classify-error.js';
import { lookupCommitOutcome, type LookupConnection } from './commit-outcome.js';
import type { IsolationLevel } from '../database.js';
import { CommitUnknownError, ConnectionError, type TransactionTimeoutError } from '../errors/errors.js';
import type { InnerQuery } from './tx-statements.js';

/** The connection was lost during COMMIT and the server says the transaction aborted: safe to re-run. */
export class CommitAbortedError extends ConnectionError {}

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
}

/**
 * Records the transaction's xid right before COMMIT, so that a COMMIT whose connection is
 * lost can be resolved (`resolveLostCommit`). `aborted` when the transaction had already
 * failed (25P02); `xid` null when none was assigned.
 *
 * Why a round trip of its own, right before COMMIT (the one statement TxManager adds to a
 * plain read-write transaction), and not something cheaper:
 * - Sent in the same simple-query message as COMMIT ("select ...; COMMIT"), the xid comes
 *   back in the same packet as COMMIT's answer (the server flushes at ReadyForQuery), so the
 *   lost-COMMIT case, the only one that needs it, is exactly the one where it never arrives.
 * - Forced at BEGIN (`pg_current_xact_id()` with the BEGIN or set_config round trip) would
 *   save the round trip, but gives every read-write transaction an xid: one that writes
 *   nothing then consumes an xid (wraparound/freeze pressure) and its COMMIT writes and
 *   flushes a commit record, a WAL fsync in place of a round trip. Not a free default.
 * - Skipped when no statement went through the tracker: unsafe, statements can reach the
 *   connection around it (copyIn writes with COPY on the raw pg client).
 * - pg (node-postgres) does not pipeline, so it cannot overlap another statement.
 * Read-only transactions skip it (no xid can be assigned). Callers that prefer the round trip
 * to the resolution turn it off with `resolveLostCommit: false` (lost COMMIT ->
 * CommitUnknownError, never a blind retry).
 */
export async function recordXid(inner: InnerQuery): Promise<RecordedXid> {
  try {
    const res = await inner('select pg_current_xact_id_if_assigned()::text as xid');
    return { xid: (res.response?.rows?.[0]?.xid as string | null) ?? null, aborted: false };
  } catch (err) {
    // 25P02: a swallowed failure aborted the transaction; COMMIT will say ROLLBACK.
    if (sqlStateOf(err) === '25P02') return { xid: null, aborted: true };
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
