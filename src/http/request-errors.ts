import { AppError } from '../app-error.js';

/** One offending input field, as reported in a 400 response. */
export interface FieldProblem {
  /** Where the field is: `body.email`, `query.limit`, `params.id`, `headers.if-match`. */
  field: string;
  message: string;
}

/** The request itself is malformed (a header or parameter the schema cannot express). */
export class BadRequestError extends AppError {
  readonly code = 'BAD_REQUEST';
  readonly fields: readonly FieldProblem[];

  constructor(message: string, fields: readonly FieldProblem[] = []) {
    super(message);
    this.fields = fields;
  }
}

/** A conditional write arrived without the precondition it requires (`If-Match`). */
export class PreconditionRequiredError extends AppError {
  readonly code = 'PRECONDITION_REQUIRED';
}

/** A row of a bulk import is malformed or invalid; `line` is where it starts (1-based). */
export class ImportRowError extends AppError {
  readonly code = 'IMPORT_ROW_INVALID';
  readonly line: number;
  readonly fields: readonly FieldProblem[];

  constructor(line: number, problem: string, fields: readonly FieldProblem[] = [], options?: ErrorOptions) {
    super(`Import row on line ${line} ${problem}.`, options);
    this.line = line;
    this.fields = fields;
  }
}

/** Which limit a slow request broke: see `server.requestTimeout`, `server.bodyTimeout` and `server.import.*`. */
export type RequestTimeoutLimit = 'request' | 'body-gap' | 'import-deadline' | 'import-rate';

/**
 * The client did not send its request (body) fast enough: answered 408 and the connection is
 * closed, since the rest of the body is never read. `limit` names the rule it broke.
 */
export class RequestTimeoutError extends AppError {
  readonly code = 'REQUEST_TIMEOUT';
  readonly limit: RequestTimeoutLimit;
  /** The configured bound that was passed, ms (or bytes per second for `import-rate`). */
  readonly bound: number;

  constructor(limit: RequestTimeoutLimit, bound: number) {
    super(REQUEST_TIMEOUT_MESSAGES[limit](bound));
    this.limit = limit;
    this.bound = bound;
  }
}

const REQUEST_TIMEOUT_MESSAGES: Record<RequestTimeoutLimit, (bound: number) => string> = {
  request: (ms) => `The request was not received within ${ms} ms.`,
  'body-gap': (ms) => `The request body stalled: no data for ${ms} ms.`,
  'import-deadline': (ms) => `The import was not uploaded within ${ms} ms.`,
  'import-rate': (bps) => `The import was uploaded slower than ${bps} bytes per second.`,
};

/** Too many imports run at once (`server.import.maxConcurrent`): answered 503 with `Retry-After`. */
export class ImportCapacityError extends AppError {
  readonly code = 'IMPORT_CAPACITY';
  /** Suggested wait before trying again, seconds. */
  readonly retryAfterS: number;

  constructor(maxConcurrent: number, retryAfterS: number) {
    super(`${maxConcurrent} imports are already running; retry later.`);
    this.retryAfterS = retryAfterS;
  }
}

/** Which per-import cap an import broke: `server.import.maxRows` or `server.import.maxBytes`. */
export type ImportCap = 'maxRows' | 'maxBytes';

/**
 * An import carries more rows or body bytes than one import may (`server.import.maxRows`,
 * `server.import.maxBytes`): answered 413, the import rolled back, the connection closed.
 */
export class ImportTooLargeError extends AppError {
  readonly code = 'IMPORT_TOO_LARGE';
  /** The cap that was passed. */
  readonly limit: ImportCap;
  /** Its configured value (rows or bytes). */
  readonly bound: number;

  constructor(limit: ImportCap, bound: number) {
    super(
      limit === 'maxRows'
        ? `The import has more than ${bound} rows (server.import.maxRows); split it.`
        : `The import is larger than ${bound} bytes (server.import.maxBytes); split it.`,
    );
    this.limit = limit;
    this.bound = bound;
  }
}

/**
 * One client already runs as many imports as it may (`server.import.maxPerClient`):
 * answered 429 with `Retry-After`.
 */
export class ImportClientCapacityError extends AppError {
  readonly code = 'IMPORT_CLIENT_CAPACITY';
  /** Suggested wait before trying again, seconds. */
  readonly retryAfterS: number;

  constructor(maxPerClient: number, retryAfterS: number) {
    super(
      `This client already runs ${maxPerClient} import(s) at once (server.import.maxPerClient); retry later.`,
    );
    this.retryAfterS = retryAfterS;
  }
}

/** A request body is not valid UTF-8; `byteOffset` is where the first bad byte is (0-based). */
export class InvalidUtf8Error extends AppError {
  readonly code = 'INVALID_UTF8';
  readonly byteOffset: number;

  constructor(byteOffset: number) {
    super(`Request body is not valid UTF-8 (first bad byte at offset ${byteOffset}).`);
    this.byteOffset = byteOffset;
  }
}
