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
import {
  ACQUIRE_TIMEOUT_MESSAGE,
  CLIENT_TIMEOUT_MESSAGE,
  CONNECTION_ERRNO,
  CONNECTION_MESSAGE,
  CONNECTION_SQLSTATES,
  SQLSTATE,
  SQLSTATE_PATTERN,
  STARTUP_PARAMETER_REFUSED_MESSAGE,
  TIMEOUT_SQLSTATES,
  TLS_VERIFY_CODE,
} from './sql-states.js';
import { TLS_REFUSED_MESSAGE } from '../connection/ssl-options.js';

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

type ErrorLike = {
  code?: unknown;
  name?: unknown;
  message?: unknown;
  nativeError?: unknown;
  cause?: unknown;
};

/**
 * The error and what it wraps, outermost first, at most 10 deep: objection's `nativeError`,
 * the `cause` chain, and the members of an `AggregateError` (Node tries IPv6 and IPv4 and
 * reports both). The one walker every check here uses.
 */
export function errorChain(err: unknown): ErrorLike[] {
  const chain: ErrorLike[] = [];
  const queue: unknown[] = [err];
  while (queue.length > 0 && chain.length < 10) {
    const e = queue.shift();
    if (e === null || typeof e !== 'object' || chain.includes(e)) continue;
    const el = e as ErrorLike;
    chain.push(el);
    if (e instanceof AggregateError) queue.push(...(e.errors as unknown[]));
    const inner = el.nativeError ?? el.cause;
    if (inner !== undefined) queue.push(inner);
  }
  return chain;
}

/** The first SQLSTATE on the error's chain: `err.code`, objection's `err.nativeError.code`, or a cause's. */
export function sqlStateOf(err: unknown): string | undefined {
  for (const e of errorChain(err)) {
    if (typeof e.code === 'string' && SQLSTATE_PATTERN.test(e.code)) return e.code;
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
 * | connection | class 08, 57P01-57P03, 57P05, 53300, the errno codes of `CONNECTION_ERRNO` (ECONNRESET, ECONNREFUSED, EPIPE, ETIMEDOUT, ENOTFOUND...), "Connection terminated...", "not queryable", `ConnectionError` | yes (not `CommitUnknownError`, not `CircuitOpenError`) |
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
    if (sqlState === SQLSTATE.serializationFailure) return withState('serialization', true);
    if (sqlState === SQLSTATE.deadlockDetected) return withState('deadlock', true);
    if (sqlState.startsWith('08') || CONNECTION_SQLSTATES.has(sqlState)) return withState('connection', true);
    if (TIMEOUT_SQLSTATES.has(sqlState)) return withState('timeout', false);
    if (sqlState === SQLSTATE.readOnlySqlTransaction) return withState('readOnly', false);
    if (sqlState.startsWith('23')) return withState('constraint', false);
    return withState('permanent', false);
  }

  if (err instanceof ConnectionError) return withState('connection', true);
  for (const e of errorChain(err)) {
    const name = typeof e.name === 'string' ? e.name : '';
    const message = typeof e.message === 'string' ? e.message : '';
    if (name === 'KnexTimeoutError' && ACQUIRE_TIMEOUT_MESSAGE.test(message)) return withState('pool', false);
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
    (c.kind === 'readOnly' && c.sqlState === SQLSTATE.readOnlySqlTransaction && !ctx.declaredReadOnly) ||
    (c.kind === 'connection' && c.transient && c.sqlState === SQLSTATE.cannotConnectNow);
  return failover ? { ...c, kind: 'failover', transient: true } : c;
}

/** What a failed connection attempt means for `connect()`'s retry loop and the pool's acquire. */
export interface ConnectFailure {
  /** Worth another attempt after a backoff (the server may come up, or free a slot). */
  transient: boolean;
  /** Short machine-friendly reason: a SQLSTATE, an errno code, or a word. */
  reason: string;
  /** A short, secret-free suggestion for the operator, naming the variables to check. */
  hint: string;
}

/**
 * Classifies one failed connection attempt as transient (retry after a backoff) or
 * permanent (fail at once), with an operator hint: the connect-time reading of the same
 * chain and the same tables as `classifyError`. Unknown errors are permanent: retrying a
 * misconfiguration only delays the report.
 *
 * Transient: the errno codes of a lost or unreachable server (ENOTFOUND included), connect
 * timeouts (pg's, ours, knex's acquire timeout while connecting), 57P03 (starting up), 53300
 * (too many connections), 57P01/57P02 and class 08. Permanent: 28P01/28000
 * (authentication), 3D000 (unknown database), 42501 (no CONNECT privilege), TLS verification
 * failures, a server without TLS when TLS is required, and a startup parameter a pooler refuses
 * (08P01 "unsupported startup parameter": names `poolerMode`).
 */
export function classifyConnectError(err: unknown): ConnectFailure {
  for (const e of errorChain(err)) {
    const code = typeof e.code === 'string' ? e.code : undefined;
    const message = typeof e.message === 'string' ? e.message : '';
    // knex's acquire timeout and tarn's create timeout: the server did not answer in time.
    if (e.name === 'KnexTimeoutError' || e.name === 'TimeoutError')
      return transient('timeout', 'no answer in time; is the server up and reachable?');
    switch (code) {
      case SQLSTATE.invalidPassword:
      case SQLSTATE.invalidAuthorization:
        return permanent(code, 'check DB_USER and DB_PASSWORD (or DB_PASSWORD_FILE)');
      case SQLSTATE.invalidCatalogName:
        return permanent(code, 'does the database exist? check DB_NAME');
      case SQLSTATE.insufficientPrivilege:
        return permanent(code, 'the role lacks the CONNECT privilege on the database');
      case SQLSTATE.cannotConnectNow:
        return transient(code, 'the server is starting up or in recovery');
      case SQLSTATE.tooManyConnections:
        return transient(
          code,
          'the server has no connection slots left; lower maxOpenConns or raise max_connections',
        );
      case SQLSTATE.adminShutdown:
      case SQLSTATE.crashShutdown:
        return transient(code, 'the server is shutting down or restarting');
      case 'NO_MATCHING_HOST':
        // Every listed host answered, none is what targetSessionAttrs asks for: a failover in progress, or a wrong list.
        return transient(
          code,
          'no host of database.postgres.hosts matches targetSessionAttrs now (a failover in progress?)',
        );
      case 'SSL_ROOT_CERT_UNREADABLE':
        return permanent(code, 'cannot read the CA file named by DB_SSL_ROOT_CERT (sslRootCert)');
      case 'INSECURE_PASSWORD_AUTH':
        return permanent(
          code,
          'the server asked for a cleartext or MD5 password over an unverified connection; use DB_SSLMODE=verify-full with DB_SSL_ROOT_CERT, a SCRAM password, or DB_ALLOW_INSECURE_AUTH=true (allowInsecurePasswordAuth)',
        );
      case 'CHANNEL_BINDING_REQUIRED':
        return permanent(
          code,
          'DB_CHANNEL_BINDING=require (channelBinding), but the server did not authenticate with SCRAM-SHA-256-PLUS over TLS',
        );
    }
    // Before class 08's "the connection broke": PgBouncer in transaction mode refuses the
    // `options` startup parameter (session settings) with 08P01, which no retry fixes.
    if (code === SQLSTATE.protocolViolation && STARTUP_PARAMETER_REFUSED_MESSAGE.test(message))
      return permanent(
        'startup_parameter_refused',
        `${message}: a pooler in front of the server (PgBouncer) refused a startup parameter; behind PgBouncer in transaction pooling mode set database.postgres.poolerMode to "transaction" (DB_POOLER_MODE=transaction), which sends none`,
      );
    if (code?.startsWith('08')) return transient(code, 'the connection broke; check the network');
    if (code && TLS_VERIFY_CODE.test(code))
      return permanent(
        code,
        'the server certificate failed verification; check DB_SSL_ROOT_CERT and the host name',
      );
    if (TLS_REFUSED_MESSAGE.test(message))
      return permanent('no_tls', 'the server does not offer TLS; use DB_SSLMODE=disable or prefer');
    if (code && CONNECTION_ERRNO.has(code)) return transient(code, hostHint(code));
    if (CONNECTION_MESSAGE.test(message) || /connection timeout/i.test(message))
      return transient('timeout', 'no answer in time; is the server up and reachable?');
  }
  return permanent('unknown', 'see the cause for details');
}

function hostHint(code: string): string {
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name does not resolve; check DB_HOST';
  return 'is the server up? check DB_HOST and DB_PORT';
}

function transient(reason: string, hint: string): ConnectFailure {
  return { transient: true, reason, hint };
}

function permanent(reason: string, hint: string): ConnectFailure {
  return { transient: false, reason, hint };
}
