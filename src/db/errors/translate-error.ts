import { wrapError } from 'db-errors';
import { AppError } from '../../app-error.js';
import { classifyError, errorChain } from './classify-error.js';
import {
  ConnectionError,
  DBError,
  PoolExhaustedError,
  ReadOnlyTransactionError,
  SerializationError,
  StatementTimeoutError,
  ValidationError,
  NotFoundError,
} from './errors.js';

/** Context for messages; never bind values. */
export interface TranslateContext {
  /** Attempts made by the transaction, for the message of an exhausted retry. */
  attempts?: number;
}

/**
 * Turns a driver error into the exported error classes, once, at the transaction boundary
 * (CONVENTIONS: translate driver errors in one place). The driver error travels as `cause`.
 *
 * - Our own errors (`AppError`), objection's `DBError`/`ValidationError`/`NotFoundError` and
 *   application errors (anything without a SQLSTATE or a connection signature) are returned
 *   unchanged: the caller gets exactly what the callback threw.
 * - 23xxx: objection's constraint classes (`UniqueViolationError`, `ForeignKeyViolationError`,
 *   `NotNullViolationError`, `CheckViolationError`) via db-errors' `wrapError`, the same
 *   classes objection's own queries throw, with `table`/`constraint` fields.
 * - 40001, 40P01: `SerializationError` (with `sqlState`); 25006: `ReadOnlyTransactionError`;
 *   57014/55P03: `StatementTimeoutError`; a lost connection: `ConnectionError`; knex's
 *   acquire timeout: `PoolExhaustedError`; any other SQLSTATE: objection's `DBError`/`DataError`.
 */
export function translateError(err: unknown, ctx: TranslateContext = {}): unknown {
  if (
    err instanceof AppError ||
    err instanceof DBError ||
    err instanceof ValidationError ||
    err instanceof NotFoundError
  )
    return err;
  const { kind, sqlState } = classifyError(err);
  const tries = ctx.attempts && ctx.attempts > 1 ? ` after ${ctx.attempts} attempts` : '';
  switch (kind) {
    case 'serialization':
      return new SerializationError(`The transaction could not be serialized${tries}.`, sqlState ?? '40001', {
        cause: err,
      });
    case 'deadlock':
      return new SerializationError(
        `The transaction was chosen as a deadlock victim${tries}.`,
        sqlState ?? '40P01',
        {
          cause: err,
        },
      );
    case 'readOnly':
    case 'failover': // only classifyTxError returns it; the manager builds failover errors itself
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
