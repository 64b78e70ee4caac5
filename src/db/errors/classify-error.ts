import {
  CircuitOpenError,
  CommitUnknownError,
  ConnectionError,
  ConstraintViolationError,
  DatabaseClosedError,
  PoolExhaustedError,
  ReadOnlyTransactionError,
  SerializationError,
  StatementTimeoutError,
  TransactionAbortedError,
  TransactionTimeoutError,
} from './errors.js';

/** What a database error means, as `classifyError` reports it. */
export const ERROR_KINDS = [
  'serialization',
  'deadlock',
  'connection',
  'timeout',
  'pool',
  'readOnly',
  'constraint',
  'permanent',
  'failover',
] as const;
/**
 * One of `ERROR_KINDS`: what an error means for the caller (retry, report, fail fast).
 * `classifyError` never answers 'failover': only `classifyTxError` does, because telling a
 * failover from a write in a read-only transaction needs to know how the transaction began.
 */
export type ErrorKind = (typeof ERROR_KINDS)[number];

/** The verdict of `classifyError`. */
export interface ErrorClassification {
  kind: ErrorKind;
  /** Re-running the whole transaction may succeed (the failure left nothing committed). */
  transient: boolean;
  /** The SQLSTATE found on the error or its cause chain, if any. */
  sqlState?: string;
}

// SQLSTATE classes start with a digit or F, H, P, X; errno codes such as EPIPE must not match.
const SQLSTATE = /^[0-9FHPX][0-9A-Z]{4}$/;

/** Socket-level failures: the connection is gone, nothing after the last acknowledged COMMIT happened. */
const CONNECTION_ERRNO = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'CONNECT_TIMEOUT',
]);

// pg reports a lost socket without any code, only with these messages.
const CONNECTION_MESSAGE =
  /Connection terminated|not queryable|Client was closed|Connection ended|socket hang up|read ECONNRESET|write EPIPE/i;

// pg's client-side `query_timeout` / knex's `.timeout()`: the server may still be running it.
const CLIENT_TIMEOUT_MESSAGE = /Query read timeout|Defined query timeout/i;

type ErrorLike = {
  code?: unknown;
  name?: unknown;
  message?: unknown;
  nativeError?: unknown;
  cause?: unknown;
};

/** The error, its `nativeError` (objection) and its `cause` chain, outermost first, at most 8 deep. */
export function errorChain(err: unknown): ErrorLike[] {
  const chain: ErrorLike[] = [];
  let current: unknown = err;
  while (current !== null && typeof current === 'object' && chain.length < 8 && !chain.includes(current)) {
    const e = current as ErrorLike;
    chain.push(e);
    current = e.nativeError ?? e.cause;
  }
  return chain;
}

/** The first SQLSTATE on the error's chain: `err.code`, objection's `err.nativeError.code`, or a cause's. */
export function sqlStateOf(err: unknown): string | undefined {
  for (const e of errorChain(err)) {
    if (typeof e.code === 'string' && SQLSTATE.test(e.code)) return e.code;
    if (e instanceof SerializationError) return e.sqlState;
  }
  return undefined;
}

/**
 * Tells what a failure means for a transaction, in one flat run of checks (after Slonik's
 * driver error mapping and pgx's `SafeToRetry`). Reads the SQLSTATE from `err.code`, from
 * objection's `err.nativeError.code`, or from the `cause` chain.
 *
 * | kind | from | transient |
 * |---|---|---|
 * | serialization | 40001, `SerializationError` | yes |
 * | deadlock | 40P01 | yes |
 * | connection | class 08, 57P01-57P03, 57P05, 53300, ECONNRESET, ECONNREFUSED, EPIPE, ETIMEDOUT, "Connection terminated...", "not queryable", `ConnectionError` | yes (not `CommitUnknownError`, not `CircuitOpenError`) |
 * | timeout | 57014, 55P03, 25P03, `TransactionTimeoutError`, `StatementTimeoutError`, pg's `query_timeout` | no |
 * | pool | knex's acquire timeout, `PoolExhaustedError` | no |
 * | readOnly | 25006, `ReadOnlyTransactionError` | no |
 * | constraint | class 23, objection's constraint errors | no |
 * | permanent | everything else, application errors included | no |
 *
 * A `TransactionAbortedError` (COMMIT answered ROLLBACK) is judged by the swallowed error it
 * carries as `cause`: a swallowed 40001 makes it retryable. Never throws.
 */
export function classifyError(err: unknown): ErrorClassification {
  const sqlState = sqlStateOf(err);
  const withState = (kind: ErrorKind, transient: boolean): ErrorClassification =>
    sqlState ? { kind, transient, sqlState } : { kind, transient };

  // Our own classes first: they already say what they mean.
  if (err instanceof TransactionAbortedError)
    return err.cause === undefined ? withState('permanent', false) : classifyError(err.cause);
  if (err instanceof CommitUnknownError) return withState('connection', false);
  if (err instanceof CircuitOpenError) return withState('connection', false);
  if (err instanceof DatabaseClosedError) return withState('permanent', false);
  if (err instanceof TransactionTimeoutError || err instanceof StatementTimeoutError)
    return withState('timeout', false);
  if (err instanceof PoolExhaustedError) return withState('pool', false);
  if (err instanceof ReadOnlyTransactionError) return withState('readOnly', false);
  if (err instanceof ConstraintViolationError) return withState('constraint', false);

  if (sqlState) {
    if (sqlState === '40001') return withState('serialization', true);
    if (sqlState === '40P01') return withState('deadlock', true);
    if (sqlState.startsWith('08')) return withState('connection', true);
    if (['57P01', '57P02', '57P03', '57P05', '53300'].includes(sqlState))
      return withState('connection', true);
    if (['57014', '55P03', '25P03'].includes(sqlState)) return withState('timeout', false);
    if (sqlState === '25006') return withState('readOnly', false);
    if (sqlState.startsWith('23')) return withState('constraint', false);
    return withState('permanent', false);
  }

  if (err instanceof ConnectionError) return withState('connection', true);
  for (const e of errorChain(err)) {
    const name = typeof e.name === 'string' ? e.name : '';
    const message = typeof e.message === 'string' ? e.message : '';
    if (name === 'KnexTimeoutError' && /acquiring a connection/i.test(message))
      return withState('pool', false);
    if (CLIENT_TIMEOUT_MESSAGE.test(message)) return withState('timeout', false);
    if (typeof e.code === 'string' && CONNECTION_ERRNO.has(e.code)) return withState('connection', true);
    if (CONNECTION_MESSAGE.test(message)) return withState('connection', true);
  }
  return withState('permanent', false);
}

/** True when re-running the whole transaction may succeed: serialization, deadlock, or a lost connection. */
export function isTransient(err: unknown): boolean {
  return classifyError(err).transient;
}

/**
 * True for a timeout that only the client saw (pg's `query_timeout`, knex's `.timeout()`): the
 * statement may still be running on the server, so the connection's state is unknown.
 */
export function isClientSideTimeout(err: unknown): boolean {
  return (
    !sqlStateOf(err) &&
    errorChain(err).some((e) => typeof e.message === 'string' && CLIENT_TIMEOUT_MESSAGE.test(e.message))
  );
}

/** What the transaction layer knows about the transaction a failure came from. */
export interface TxErrorContext {
  /** The transaction was declared read-only by our options (`readOnly: true`). */
  declaredReadOnly: boolean;
}

/**
 * `classifyError` refined by what only the transaction layer knows (pg#2650: failover floods
 * 57P03 and read-only errors on a "primary"). `classifyError` stays pure and context-free;
 * this is the one place where the context changes the verdict, and only to 'failover':
 *
 * | from | declared read-only | kind | transient |
 * |---|---|---|---|
 * | 25006 (read_only_sql_transaction), also as a `cause` | no | failover | yes |
 * | 25006 | yes | readOnly (a write in a read-only transaction: fail at once) | no |
 * | 57P03 (cannot_connect_now: starting up, shutting down, in recovery) | either | failover | yes |
 *
 * Why 25006 without `readOnly` is a failover: we asked for a read-write transaction (a plain
 * BEGIN) and the session answered read-only, so the server is now a standby, or the pooled
 * session was opened while the database was read-only (`default_transaction_read_only`) and
 * predates the switch. A new session on a re-resolved host may succeed. A role or database
 * that is read-only on purpose is also reported as 'failover' here: it costs the retries,
 * then the caller gets `ReadOnlyTransactionError` all the same. A callback that runs
 * `SET TRANSACTION READ ONLY` itself and then writes is treated the same way.
 *
 * Errors classified non-transient for another reason (`CircuitOpenError`,
 * `CommitUnknownError`) keep their verdict. Never throws.
 */
export function classifyTxError(err: unknown, ctx: TxErrorContext): ErrorClassification {
  const c = classifyError(err);
  const failover =
    (c.kind === 'readOnly' && c.sqlState === '25006' && !ctx.declaredReadOnly) ||
    (c.kind === 'connection' && c.transient && c.sqlState === '57P03');
  return failover ? { ...c, kind: 'failover', transient: true } : c;
}
