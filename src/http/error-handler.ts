import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  CheckViolationError,
  CircuitOpenError,
  CommitUnknownError,
  ConnectionError,
  DataError,
  DatabaseClosedError,
  ForeignKeyViolationError,
  NotFoundError,
  NotNullViolationError,
  OptimisticLockError,
  PoolExhaustedError,
  ReadOnlyTransactionError,
  SerializationError,
  StatementTimeoutError,
  TransactionTimeoutError,
  UniqueViolationError,
  ValidationError,
  classifyError,
} from '../db/index.js';
import {
  BadRequestError,
  ImportCapacityError,
  ImportClientCapacityError,
  ImportRowError,
  ImportTooLargeError,
  InvalidUtf8Error,
  PreconditionRequiredError,
  RequestTimeoutError,
  type FieldProblem,
} from './request-errors.js';
import {
  ajvFieldProblems,
  modelFieldProblems,
  uniqueFieldProblems,
  type AjvValidationError,
} from './field-problems.js';

/** The JSON body of every error response. Never carries SQL text, a stack or a secret. */
export interface ErrorBody {
  statusCode: number;
  /** Stable machine-readable code, e.g. `VALIDATION`, `DUPLICATE`, `DATABASE_UNAVAILABLE`. */
  code: string;
  message: string;
  /** The request id (also in the `x-request-id` response header and every log line). */
  requestId?: string;
  /** The offending fields of a 400. */
  fields?: FieldProblem[];
  /** The 1-based line of the offending row of a bulk import. */
  line?: number;
}

/** How one error becomes a response. */
export interface ErrorResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: ErrorBody;
}

/** Default `Retry-After` of a 503 whose cause gives no better hint, seconds. */
const DEFAULT_RETRY_AFTER_S = 1;

/** Fastify's own client errors that keep their status (body parsing, content type, limits). */
const FASTIFY_CLIENT_ERRORS: Record<string, [number, string, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'BODY_TOO_LARGE', 'Request body is larger than the limit.'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE', 'Unsupported content type.'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'MALFORMED_JSON', 'Request body is not valid JSON.'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'MALFORMED_JSON', 'Request body is empty.'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'BAD_REQUEST', 'Body size does not match Content-Length.'],
};

/**
 * Maps any error to its HTTP response. This is the only place where HTTP status codes are
 * chosen: 400 (validation, with the offending fields; invalid UTF-8), 404, 408 (a request
 * body too slow), 409 (duplicate), 412 (stale version), 413, 415, 428, 503 with `Retry-After`
 * (database unavailable, breaker open, draining, timeouts, exhausted retries, too many imports
 * at once) and 500 for everything else. Messages are fixed
 * sentences chosen here or written by this project; a database error's own text is never used.
 */
export function errorResponse(err: unknown, requestId?: string): ErrorResponse {
  const r = classify(err);
  const line = lineOf(err);
  if (line !== undefined && r.status < 500 && r.line === undefined) {
    // A bulk-import row error (the route attached the row's line): say which row.
    r.line = line;
    r.message = `Import row on line ${line}: ${r.message}`;
  }
  const body: ErrorBody = { statusCode: r.status, code: r.code, message: r.message };
  if (requestId) body.requestId = requestId;
  if (r.fields) body.fields = r.fields;
  if (r.line !== undefined) body.line = r.line;
  const headers: Record<string, string> = {};
  if (r.retryAfterS !== undefined) headers['retry-after'] = String(r.retryAfterS);
  return { statusCode: r.status, headers, body };
}

interface Classified {
  status: number;
  code: string;
  message: string;
  fields?: FieldProblem[];
  line?: number;
  retryAfterS?: number;
}

function classify(err: unknown): Classified {
  const fe = err as Partial<FastifyError> & AjvValidationError;
  if (fe?.validation) {
    return { status: 400, code: 'VALIDATION', message: 'Request is invalid.', fields: ajvFieldProblems(fe) };
  }
  if (typeof fe?.code === 'string' && fe.code in FASTIFY_CLIENT_ERRORS) {
    const [status, code, message] = FASTIFY_CLIENT_ERRORS[fe.code]!;
    return { status, code, message };
  }
  if (err instanceof BadRequestError)
    return { status: 400, code: err.code, message: err.message, fields: [...err.fields] };
  if (err instanceof ImportRowError)
    return {
      status: 400,
      code: 'IMPORT_ROW_INVALID',
      message: err.message,
      line: err.line,
      fields: [...err.fields],
    };
  if (err instanceof InvalidUtf8Error) return { status: 400, code: err.code, message: err.message };
  if (err instanceof RequestTimeoutError) return { status: 408, code: err.code, message: err.message };
  if (err instanceof ImportCapacityError)
    return { status: 503, code: err.code, message: err.message, retryAfterS: Math.max(1, err.retryAfterS) };
  if (err instanceof ImportClientCapacityError)
    return { status: 429, code: err.code, message: err.message, retryAfterS: Math.max(1, err.retryAfterS) };
  if (err instanceof ImportTooLargeError) return { status: 413, code: err.code, message: err.message };
  if (err instanceof ValidationError)
    return {
      status: 400,
      code: 'VALIDATION',
      message: 'Request is invalid.',
      fields: modelFieldProblems(err),
    };
  if (err instanceof NotFoundError) return { status: 404, code: 'NOT_FOUND', message: 'Not found.' };
  if (err instanceof UniqueViolationError)
    return {
      status: 409,
      code: 'DUPLICATE',
      message: 'A resource with these values already exists.',
      fields: uniqueFieldProblems(err),
    };
  if (err instanceof OptimisticLockError)
    return { status: 412, code: 'VERSION_MISMATCH', message: err.message };
  if (err instanceof PreconditionRequiredError) return { status: 428, code: err.code, message: err.message };
  if (err instanceof ForeignKeyViolationError)
    return { status: 409, code: 'CONFLICT', message: 'A referenced resource does not exist.' };
  if (err instanceof CheckViolationError || err instanceof NotNullViolationError || err instanceof DataError)
    return { status: 400, code: 'VALIDATION', message: 'A value is not allowed.' };
  if (err instanceof CircuitOpenError)
    return unavailable(
      'CIRCUIT_OPEN',
      'The database is unavailable; failing fast.',
      Math.ceil(err.retryAfterMs / 1000),
    );
  if (
    err instanceof ConnectionError ||
    err instanceof PoolExhaustedError ||
    err instanceof DatabaseClosedError
  )
    return unavailable('DATABASE_UNAVAILABLE', 'The database is unavailable.');
  if (err instanceof TransactionTimeoutError || err instanceof StatementTimeoutError)
    return unavailable('TIMEOUT', 'The database did not answer in time.');
  if (err instanceof SerializationError)
    return unavailable('CONTENTION', 'The request conflicted with concurrent work; retry it.');
  if (err instanceof ReadOnlyTransactionError)
    return unavailable('DATABASE_READ_ONLY', 'The database is read-only right now (failover?).');
  if (err instanceof CommitUnknownError)
    return {
      status: 500,
      code: err.code,
      message: 'The outcome of the write is unknown; check before retrying.',
    };
  if (classifyError(err).kind === 'connection')
    return unavailable('DATABASE_UNAVAILABLE', 'The database is unavailable.');
  return { status: 500, code: 'INTERNAL', message: 'Internal server error.' };
}

function lineOf(err: unknown): number | undefined {
  const line = (err as { line?: unknown } | null)?.line;
  return typeof line === 'number' && Number.isInteger(line) && line > 0 ? line : undefined;
}

function unavailable(code: string, message: string, retryAfterS = DEFAULT_RETRY_AFTER_S): Classified {
  return { status: 503, code, message, retryAfterS: Math.max(1, retryAfterS) };
}

/**
 * Installs the one error handler on `app`. 5xx are logged at error
 * with the full error (the logger redacts secrets); 4xx at info without a stack.
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const res = errorResponse(err, String(request.id));
    if (res.statusCode >= 500) request.log.error({ err }, 'request failed');
    else request.log.info({ code: res.body.code, statusCode: res.statusCode }, 'request rejected');
    void reply.code(res.statusCode).headers(res.headers).send(res.body);
  });
}

/** Installs the JSON 404 (`code: 'NOT_FOUND'`) for unknown routes. */
export function installNotFoundHandler(app: FastifyInstance): void {
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    const body: ErrorBody = {
      statusCode: 404,
      code: 'NOT_FOUND',
      message: 'Route not found.',
      requestId: String(request.id),
    };
    void reply.code(404).send(body);
  });
}
