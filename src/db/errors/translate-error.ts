import { wrapError } from 'db-errors';
import { AppError } from '../../app-error.js';
import { classifyConnectError, classifyTxError, errorChain } from './classify-error.js';
import {
  ConnectionError,
  DatabaseClosedError,
  DBError,
  PoolExhaustedError,
  ReadOnlyTransactionError,
  SerializationError,
  StatementTimeoutError,
  ValidationError,
  NotFoundError,
} from './errors.js';
import { SQLSTATE } from './sql-states.js';

/** What the caller knows about where an error came from; never bind values. */
export interface TranslateContext {
  /** Attempts made by the transaction, for the message of an exhausted retry. */
  attempts?: number;
  /**
   * The transaction was declared read-only (`readOnly: true`): a 25006 is the caller's own
   * write. Otherwise a 25006 or a 57P03 is a failover (pg#2650). Absent: no transaction
   * context, and a 25006 is a read-only error.
   */
  declaredReadOnly?: boolean;
  /**
   * The transaction's connection broke before COMMIT was sent. Whatever the callback threw
   * afterwards (knex's "Transaction query already complete", pg's "Client was closed") is
   * that loss: a `ConnectionError` with the thrown error as `cause`.
   */
  connectionLost?: boolean;
}

/**
 * Turns a driver, pool or knex error into the exported error classes: the one translator,
 * used by transactions, connect, the pool's acquire and COPY. The original travels as
 * `cause`.
 *
 * - Our own errors (`AppError`), objection's `DBError`/`ValidationError`/`NotFoundError` and
 *   application errors (anything without a SQLSTATE or a connection signature) are returned
 *   unchanged: the caller gets exactly what the callback threw, unless `connectionLost`.
 * - 23xxx: objection's constraint classes (`UniqueViolationError`, `ForeignKeyViolationError`,
 *   `NotNullViolationError`, `CheckViolationError`) via db-errors' `wrapError`, the same
 *   classes objection's own queries throw, with `table`/`constraint` fields.
 * - 40001, 40P01: `SerializationError` (with `sqlState`); 25006: `ReadOnlyTransactionError`;
 *   a failover: `ReadOnlyTransactionError` (25006) or `ConnectionError` (57P03), naming it;
 *   57014/55P03: `StatementTimeoutError`; a lost connection: `ConnectionError`; knex's
 *   acquire timeout: `PoolExhaustedError`; any other SQLSTATE: objection's `DBError`/`DataError`.
 */
export function translateError(err: unknown, ctx: TranslateContext = {}): unknown {
  const tries = ctx.attempts && ctx.attempts > 1 ? ` after ${ctx.attempts} attempts` : '';
  if (ctx.connectionLost && !(err instanceof ConnectionError))
    return new ConnectionError(
      `The database connection was lost during the transaction${tries}; nothing was committed.`,
      { attempts: ctx.attempts ?? 1, cause: err },
    );
  if (
    err instanceof AppError ||
    err instanceof DBError ||
    err instanceof ValidationError ||
    err instanceof NotFoundError
  )
    return err;
  const { kind, sqlState } = classifyTxError(err, { declaredReadOnly: ctx.declaredReadOnly ?? true });
  switch (kind) {
    case 'serialization':
      return new SerializationError(
        `The transaction could not be serialized${tries}.`,
        sqlState ?? SQLSTATE.serializationFailure,
        { cause: err },
      );
    case 'deadlock':
      return new SerializationError(
        `The transaction was chosen as a deadlock victim${tries}.`,
        sqlState ?? SQLSTATE.deadlockDetected,
        { cause: err },
      );
    case 'failover':
      return failoverError(err, sqlState, ctx.attempts ?? 1);
    case 'readOnly':
      return new ReadOnlyTransactionError('A write was attempted in a read-only transaction.', {
        cause: err,
      });
    case 'timeout':
      return new StatementTimeoutError('A statement was cancelled by a server or client timeout.', {
        cause: err,
      });
    case 'connection':
      return new ConnectionError(`The database connection was lost${tries}.`, {
        attempts: ctx.attempts ?? 1,
        cause: err,
      });
    case 'pool':
      return new PoolExhaustedError('No pool connection became free in time.', { cause: err });
    case 'constraint':
    case 'permanent':
      return sqlState ? wrapDriverError(err) : err;
  }
}

/**
 * The part of `translateError` that is safe below the outermost transaction: a driver error of a
 * statement (constraint violation, bad data, ...) as objection's typed class; every other error
 * unchanged, so the outermost transaction still sees what to retry (a failover, a lost connection).
 */
export function translateStatementError(err: unknown): unknown {
  if (err instanceof AppError || err instanceof DBError) return err;
  const { kind, sqlState } = classifyTxError(err, { declaredReadOnly: true });
  return sqlState && (kind === 'constraint' || kind === 'permanent') ? wrapDriverError(err) : err;
}

/** What the pool knew when an acquire failed. */
export interface AcquireContext {
  /** The database is draining or closed. */
  closed: boolean;
  /** Every connection was checked out (a timeout then means "pool busy", not "server unreachable"). */
  full: boolean;
  max: number;
  /** Who holds the connections, oldest first (leak detection). */
  holders: () => ReadonlyArray<{ heldMs: number; stack?: string }>;
}

/**
 * A failed pool checkout (knex#1833, pg#2973: "pool busy" and "database unreachable" must not
 * look the same): `DatabaseClosedError` while closing; `PoolExhaustedError` with the oldest
 * holders when knex's acquire timed out with every connection in use; otherwise
 * `ConnectionError` with an operator hint (the server could not be reached or refused us).
 */
export function translateAcquireError(err: unknown, ctx: AcquireContext): Error {
  if (ctx.closed || (err instanceof Error && /^aborted$|Unable to acquire a connection/.test(err.message)))
    return new DatabaseClosedError('The database closed while waiting for a connection.', { cause: err });
  if (ctx.full && err instanceof Error && err.name === 'KnexTimeoutError') {
    const holders = ctx.holders();
    return new PoolExhaustedError(
      `No pool connection became free in time: all ${ctx.max} are in use (oldest held ${holders[0]?.heldMs ?? '?'} ms).`,
      { holders, cause: err },
    );
  }
  if (err instanceof AppError) return err;
  const failure = classifyConnectError(err);
  return new ConnectionError('Could not open a database connection.', { hint: failure.hint, cause: err });
}

/**
 * A failover that outlasted the retries, or met a transaction without retry: never the raw
 * driver error, never a success. 57P03 gives `ConnectionError` (the server refused
 * connections), 25006 `ReadOnlyTransactionError`, each naming the failover and the SQLSTATE.
 */
function failoverError(err: unknown, sqlState: string | undefined, attempts: number): Error {
  const tries = attempts > 1 ? ` (${attempts} attempts)` : '';
  if (sqlState === SQLSTATE.cannotConnectNow)
    return new ConnectionError(
      `The server refused new connections (SQLSTATE 57P03: starting up, shutting down or in recovery)${tries}; a failover may be in progress.`,
      {
        attempts,
        hint: 'wait for the failover to finish; check that the host points at the new primary',
        cause: err,
      },
    );
  return new ReadOnlyTransactionError(
    `The session was read-only although a read-write transaction was asked for (SQLSTATE 25006)${tries}: the server is a standby or the connection predates a failover. Nothing was written.`,
    { cause: err },
  );
}

/** objection's class for a pg error (found on the error or its chain), with the original as `cause`. */
function wrapDriverError(err: unknown): unknown {
  const native = errorChain(err).find((e) => typeof e.code === 'string' && 'table' in e) ?? err;
  const wrapped: unknown = wrapError(native as Error);
  if (wrapped === native) return err;
  Object.defineProperty(wrapped, 'cause', {
    value: err,
    enumerable: false,
    writable: true,
    configurable: true,
  });
  return wrapped;
}
