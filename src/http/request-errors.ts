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
