import { AppError } from '../../app-error.js';

export {
  UniqueViolationError,
  ForeignKeyViolationError,
  NotNullViolationError,
  CheckViolationError,
  ConstraintViolationError,
  DataError,
  DBError,
  ValidationError,
  NotFoundError,
} from 'objection';

/** The database could not be reached or the connection broke (after any retries). */
export class ConnectionError extends AppError {
  readonly code = 'CONNECTION_ERROR';
  /** Connection attempts made before giving up. */
  readonly attempts: number;
  /** A short, secret-free suggestion of what to check. */
  readonly hint: string | undefined;

  constructor(message: string, opts: { attempts?: number; hint?: string; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.attempts = opts.attempts ?? 1;
    this.hint = opts.hint;
  }
}

/** The database is draining or closed and refuses new work. */
export class DatabaseClosedError extends AppError {
  readonly code = 'DATABASE_CLOSED';
}

/** A transaction ran past its deadline; it was cancelled on the server and rolled back. */
export class TransactionTimeoutError extends AppError {
  readonly code = 'TRANSACTION_TIMEOUT';
  /** The deadline the transaction ran past, ms. */
  readonly timeoutMs: number;

  constructor(timeoutMs: number, options?: ErrorOptions) {
    super(`Transaction exceeded its ${timeoutMs} ms timeout and was rolled back.`, options);
    this.timeoutMs = timeoutMs;
  }
}

/** The connection was lost while COMMIT was in flight and the outcome could not be learned. */
export class CommitUnknownError extends AppError {
  readonly code = 'COMMIT_UNKNOWN';
  /** The transaction id recorded before COMMIT, if any (look it up with pg_xact_status). */
  readonly xid: string | undefined;

  constructor(message: string, opts: { xid?: string; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.xid = opts.xid;
  }
}

/** A write was attempted in a read-only transaction (SQLSTATE 25006). */
export class ReadOnlyTransactionError extends AppError {
  readonly code = 'READ_ONLY_TRANSACTION';
}

/** The circuit breaker is open: database work fails fast without touching the pool. */
export class CircuitOpenError extends AppError {
  readonly code = 'CIRCUIT_OPEN';
  /** Suggested wait before trying again, ms. */
  readonly retryAfterMs: number;

  constructor(retryAfterMs: number, options?: ErrorOptions) {
    super('The database circuit breaker is open; failing fast.', options);
    this.retryAfterMs = retryAfterMs;
  }
}

/** One checked-out connection, as `PoolExhaustedError.holders` lists it. */
export interface PoolHolderInfo {
  /** How long the connection has been checked out, ms. */
  heldMs: number;
  /**
   * Where it was acquired: the application's frames (knex, tarn, pg, Node and this layer's own
   * frames left out), when stacks are captured (`leakDetectionThreshold` > 0 or `captureAcquireStacks`).
   */
  stack?: string;
}

/**
 * No pool connection became free within the acquire timeout. When the checkout was for a query
 * outside a transaction, `sql` is its text (placeholders, no values) and `bindings` its values,
 * as knex puts them on its own `KnexTimeoutError`; `bindings` is non-enumerable, so neither
 * loggers nor `JSON.stringify` see it, and neither field is ever in the message.
 */
export class PoolExhaustedError extends AppError {
  readonly code = 'POOL_EXHAUSTED';
  /** Who holds connections now, oldest first (leak detection). */
  readonly holders: ReadonlyArray<PoolHolderInfo>;
  /** The SQL of the query that waited, when it was one (not a transaction's BEGIN). */
  sql: string | undefined;
  /** Its bind values; non-enumerable (they may carry personal data or secrets). */
  declare readonly bindings: readonly unknown[] | undefined;

  constructor(
    message: string,
    opts: {
      holders?: ReadonlyArray<PoolHolderInfo>;
      sql?: string;
      bindings?: readonly unknown[];
      cause?: unknown;
    } = {},
  ) {
    super(message, { cause: opts.cause });
    this.holders = opts.holders ?? [];
    this.sql = opts.sql;
    defineHidden(this, 'bindings', opts.bindings);
  }

  /** Records the query that waited (what knex attaches to its own timeout error). */
  attachQuery(query: { sql: string | undefined; bindings: readonly unknown[] | undefined }): void {
    this.sql = query.sql;
    defineHidden(this, 'bindings', query.bindings);
  }
}

/** A non-enumerable own property: kept out of loggers, `JSON.stringify` and `util.inspect`'s default view. */
function defineHidden(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: false, writable: true, configurable: true });
}

/** An update expected a row version that has since moved. */
export class OptimisticLockError extends AppError {
  readonly code = 'OPTIMISTIC_LOCK';
  /** The kind of row, e.g. `User`. */
  readonly entity: string;
  /** The row's id. */
  readonly id: string;
  /** The version the caller expected (the row has moved past it, or was deleted meanwhile). */
  readonly expectedVersion: number;

  constructor(entity: string, id: string, expectedVersion: number) {
    super(`${entity} ${id} is no longer at version ${expectedVersion}.`);
    this.entity = entity;
    this.id = id;
    this.expectedVersion = expectedVersion;
  }
}

/** A serialization failure or deadlock that persisted through every retry. */
export class SerializationError extends AppError {
  readonly code = 'SERIALIZATION_FAILURE';
  /** `40001` (serialization failure) or `40P01` (deadlock), from the last attempt. */
  readonly sqlState: string;

  constructor(message: string, sqlState: string, options?: ErrorOptions) {
    super(message, options);
    this.sqlState = sqlState;
  }
}

/** A statement was cancelled by statement_timeout or lock_timeout outside our own deadline (57014, 55P03). */
export class StatementTimeoutError extends AppError {
  readonly code = 'STATEMENT_TIMEOUT';
}

/** A transaction handle was used after it ended, or with incompatible options. */
export class TransactionStateError extends AppError {
  readonly code = 'TRANSACTION_STATE';
}

/** Invalid TxOptions, rejected before any connection is taken. */
export class TxOptionsError extends AppError {
  readonly code = 'TX_OPTIONS';
}

/**
 * COMMIT was answered with ROLLBACK: a statement had already failed (the callback caught its
 * error and went on), so the server rolled the whole transaction back. Nothing was written.
 * The swallowed error, when the manager saw it, is the `cause`.
 */
export class TransactionAbortedError extends AppError {
  readonly code = 'TRANSACTION_ABORTED';
}

/**
 * Code inside an ambient transaction took a second pool connection (a query on the base knex
 * instead of the transaction): it runs outside the transaction and can self-deadlock on a
 * small pool (knex#1171). Raised when `foreignConnectionGuard` is 'error'.
 */
export class ForeignConnectionError extends AppError {
  readonly code = 'FOREIGN_CONNECTION';
}

/**
 * The connection was lost during COMMIT and the server says the transaction aborted: safe to
 * re-run, and the transaction manager re-runs it. Not exported by name: a caller whose retries
 * ran out (or with `retry: false`) gets it as a `ConnectionError` (its class), whose message
 * says the transaction was rolled back (the chaos suite's cut-after-COMMIT scenario sees it).
 */
export class CommitAbortedError extends ConnectionError {}

/** The step of a two-phase commit at which it was abandoned. */
export type TwoPhaseStep = 'begin' | 'prepare' | 'decide';

/**
 * A two-phase unit of work was abandoned before the commit decision: every participant was
 * rolled back (a transaction that may have been prepared although its connection broke is
 * rolled back by `TwoPhaseCommit.recover()`), nothing was committed anywhere. `participant`
 * names the one that failed (undefined: the coordinator's decision record); the driver's
 * error is the `cause`.
 */
export class TwoPhaseAbortedError extends AppError {
  readonly code = 'TWO_PHASE_ABORTED';
  /** The participant that could not begin or prepare; undefined when the coordinator failed. */
  readonly participant: string | undefined;
  /** Where it failed. */
  readonly step: TwoPhaseStep;

  constructor(message: string, opts: { participant?: string; step?: TwoPhaseStep; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.participant = opts.participant;
    this.step = opts.step ?? 'prepare';
  }
}

/**
 * A two-phase unit of work was decided (the coordinator's decision record is committed) but
 * some participants could not be told to `COMMIT PREPARED`, even after retries. The commit is
 * guaranteed: their prepared transactions hold the work (and its locks) until
 * `TwoPhaseCommit.recover()` commits them. Do not re-run the unit of work.
 */
export class TwoPhaseIncompleteError extends AppError {
  readonly code = 'TWO_PHASE_INCOMPLETE';
  /** The participants whose prepared transaction is not committed yet. */
  readonly pending: readonly string[];
  /** The global id of the unit of work (the prefix of its gids, e.g. `pgdl2pc_1a2b3c4d_7351`). */
  readonly globalId: string;

  constructor(
    message: string,
    opts: { pending?: readonly string[]; globalId?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.pending = opts.pending ?? [];
    this.globalId = opts.globalId ?? '';
  }
}

/**
 * A two-phase commit participant's server has `max_prepared_transactions = 0` (PostgreSQL's
 * default), so `PREPARE TRANSACTION` cannot work there. Checked once per participant, before any
 * transaction is opened. Set `max_prepared_transactions` (a restart is needed) to at least
 * the number of units of work that may be in flight at once.
 */
export class PreparedTransactionsDisabledError extends AppError {
  readonly code = 'PREPARED_TRANSACTIONS_DISABLED';
  /** The participant whose server refuses prepared transactions. */
  readonly participant: string;

  constructor(participant: string, options?: ErrorOptions) {
    super(
      `Two-phase commit participant "${participant}" has max_prepared_transactions = 0; set it above 0 on that server (needs a restart).`,
      options,
    );
    this.participant = participant;
  }
}
