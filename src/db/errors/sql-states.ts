/**
 * Every SQLSTATE, errno code and driver message this layer acts on, named in one place
 * (PostgreSQL's "Appendix A. Error Codes"). The classifier (`classify-error.ts`) and the
 * translator (`translate-error.ts`) read them from here; nothing else compares codes.
 */
export const SQLSTATE = {
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  readOnlySqlTransaction: '25006',
  inFailedSqlTransaction: '25P02',
  idleInTransactionSessionTimeout: '25P03',
  queryCanceled: '57014',
  lockNotAvailable: '55P03',
  adminShutdown: '57P01',
  crashShutdown: '57P02',
  cannotConnectNow: '57P03',
  databaseDropped: '57P05',
  tooManyConnections: '53300',
  invalidPassword: '28P01',
  invalidAuthorization: '28000',
  invalidCatalogName: '3D000',
  insufficientPrivilege: '42501',
  /** COMMIT/ROLLBACK PREPARED of a gid that is not (or no longer) prepared. */
  undefinedObject: '42704',
  uniqueViolation: '23505',
  duplicateTable: '42P07',
  /** pg's code for a startup parameter the server (or PgBouncer) refuses. */
  protocolViolation: '08P01',
} as const;

/** The shape of a SQLSTATE: classes start with a digit or F, H, P, X (so errno codes like EPIPE never match). */
export const SQLSTATE_PATTERN = /^[0-9FHPX][0-9A-Z]{4}$/;

/** SQLSTATEs (besides class 08) that mean the session is gone or cannot be had now: nothing after the last COMMIT happened. */
export const CONNECTION_SQLSTATES: ReadonlySet<string> = new Set([
  SQLSTATE.adminShutdown,
  SQLSTATE.crashShutdown,
  SQLSTATE.cannotConnectNow,
  SQLSTATE.databaseDropped,
  SQLSTATE.tooManyConnections,
]);

/** SQLSTATEs of a statement stopped by a server-side timeout. */
export const TIMEOUT_SQLSTATES: ReadonlySet<string> = new Set([
  SQLSTATE.queryCanceled,
  SQLSTATE.lockNotAvailable,
  SQLSTATE.idleInTransactionSessionTimeout,
]);

/**
 * Socket-level errno codes of a lost or unreachable server. ENOTFOUND is here too: it is
 * permanent for a typo, but in Compose/Kubernetes a service's name resolves only once the
 * service exists, and retries are bounded.
 */
export const CONNECTION_ERRNO: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'CONNECT_TIMEOUT',
]);

/**
 * pg and knex report a lost socket, or a transaction that died with it, without any code,
 * only with these messages. "Transaction query already complete" is knex marking a
 * transaction over; it counts as a lost connection only when the transaction's connection
 * is known to be broken (the transaction layer checks that, not this pattern).
 */
export const CONNECTION_MESSAGE =
  /Connection terminated|not queryable|Client was closed|Connection ended|socket hang up|read ECONNRESET|write EPIPE|timeout expired|Client network socket disconnected/i;

/** PgBouncer's refusal of a startup parameter (08P01), e.g. "unsupported startup parameter: options". */
export const STARTUP_PARAMETER_REFUSED_MESSAGE = /unsupported startup parameter/i;

/** pg's client-side `query_timeout` / knex's `.timeout()`: the server may still be running the statement. */
export const CLIENT_TIMEOUT_MESSAGE = /Query read timeout|Defined query timeout/i;

/** knex's acquire timeout (the pool had no free connection in time). */
export const ACQUIRE_TIMEOUT_MESSAGE = /acquiring a connection/i;

/** TLS certificate verification failures (Node's and OpenSSL's codes). */
export const TLS_VERIFY_CODE =
  /^(ERR_TLS_CERT_ALTNAME_INVALID|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_.*)$/;
