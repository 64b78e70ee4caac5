import { UniqueViolationError, ValidationError } from '../db/index.js';
import { User, type WritableUserStatus } from './user-model.js';

/** What `create`, `upsertByEmail`, `insertMany` and `copyIn` accept. `status` defaults to `active`. */
export interface NewUser {
  email: string;
  name: string;
  status?: WritableUserStatus;
}

/** What `update` accepts: any non-empty subset of the writable fields. */
export type UserPatch = Partial<NewUser>;

/** A new user after validation, every field present. */
export type ValidNewUser = Required<NewUser>;

/** Largest bigint id (2^63 - 1), as PostgreSQL's int8. */
const MAX_ID = 9223372036854775807n;

/**
 * True when `id` can name a row: a decimal string without sign or leading zeros, at most
 * 2^63 - 1. Anything else names no row, so lookups answer "not found" without a query
 * (and never a 22P02 from the server).
 */
export function isUserId(id: unknown): id is string {
  return typeof id === 'string' && /^[1-9][0-9]{0,18}$/.test(id) && BigInt(id) <= MAX_ID;
}

/** objection's own compiled check of `User.jsonSchema` (its Ajv, formats and options), built on first use. */
let compiledCheck: ((json: object) => boolean) | undefined;

function schemaCheck(): (json: object) => boolean {
  if (compiledCheck) return compiledCheck;
  // objection 3's `Model.getValidator()` (an AjvValidator) and its compiled-validator cache are
  // untyped: without them every row takes the slow path (same answers, only slower).
  const model = User as unknown as {
    getValidator?: () => { getValidator?: (m: unknown, schema: object, patch: boolean) => unknown };
    getJsonSchema?: () => object;
  };
  const validator = typeof model.getValidator === 'function' ? model.getValidator() : undefined;
  const compiled =
    typeof validator?.getValidator === 'function' && typeof model.getJsonSchema === 'function'
      ? validator.getValidator(User, model.getJsonSchema(), false)
      : undefined;
  return (compiledCheck =
    typeof compiled === 'function' ? (compiled as (json: object) => boolean) : () => false);
}

/**
 * Validates one row of a bulk load (`insertMany`, `copyIn`) as `validateNewUser(row, rowIndex)`
 * does, with the same errors: a plain row passes objection's own compiled schema check (the
 * validator `User.fromJson` runs, compiled once) and the NUL check without building a `User`,
 * which costs several µs a row; a row that fails goes through `validateNewUser` for the error.
 * @throws ValidationError naming the row's bad fields and its `rowIndex`.
 */
export function validateNewUserRow(input: unknown, rowIndex: number): ValidNewUser {
  const row = input as Record<string, unknown> | null;
  if (
    typeof row === 'object' &&
    row !== null &&
    Object.getPrototypeOf(row) === Object.prototype &&
    (compiledCheck ?? schemaCheck())(row) &&
    !hasNul(row)
  ) {
    const { email, name, status } = row as unknown as NewUser;
    return { email, name, status: status ?? 'active' };
  }
  return validateNewUser(input, rowIndex);
}

/** `validateNewUserRow` over every row. @throws ValidationError for the first bad row. */
export function validateNewUsers(rows: readonly unknown[]): ValidNewUser[] {
  const valid = new Array<ValidNewUser>(rows.length);
  for (let i = 0; i < rows.length; i++) valid[i] = validateNewUserRow(rows[i], i);
  return valid;
}

function hasNul(row: Record<string, unknown>): boolean {
  for (const key in row) {
    const value = row[key];
    if (typeof value === 'string' && value.includes('\u0000')) return true;
  }
  return false;
}

/**
 * Validates one new user against `User.jsonSchema` (plus the NUL check) and fills the
 * default status.
 * @param rowIndex - for bulk loads: error keys become `rows[<rowIndex>].<field>` and the
 *   error's `rowIndex` names the row (0-based).
 * @throws ValidationError naming every bad field.
 */
export function validateNewUser(input: unknown, rowIndex?: number): ValidNewUser {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw fieldError(
      rowIndex === undefined ? 'user' : `rows[${rowIndex}]`,
      'must be an object',
      'type',
      rowIndex,
    );
  }
  try {
    const user = userFromJson(input);
    return { email: user.email, name: user.name, status: (user.status as WritableUserStatus) ?? 'active' };
  } catch (err) {
    if (rowIndex === undefined || !(err instanceof ValidationError)) throw err;
    const data: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(err.data as object)) data[`rows[${rowIndex}].${key}`] = value;
    throw withRowIndex(new ValidationError({ type: 'ModelValidation', modelClass: User, data }), rowIndex);
  }
}

/**
 * Validates a patch for `update`: the same rules as a new user for the fields present.
 * @throws ValidationError naming every bad field; also when the patch is empty.
 */
export function validatePatch(patch: unknown): UserPatch {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
    throw fieldError('patch', 'must be an object', 'type');
  }
  const user = userFromJson(patch, { patch: true });
  const valid: UserPatch = {};
  if (user.email !== undefined) valid.email = user.email;
  if (user.name !== undefined) valid.name = user.name;
  if (user.status !== undefined) valid.status = user.status as WritableUserStatus;
  if (Object.keys(valid).length === 0)
    throw fieldError('patch', 'must change at least one field', 'minProperties');
  return valid;
}

/** The properties a user input may have (`User.jsonSchema`'s). */
const KNOWN_FIELDS: ReadonlySet<string> = new Set(Object.keys(User.jsonSchema.properties ?? {}));

/**
 * `User.fromJson(input, opts)`, with own properties the schema does not name refused before
 * objection's validator sees them: its `AjvValidator` collects errors in a plain object
 * (`errorHash[key] || (errorHash[key] = [])`, objection 3.1.5 lib/model/AjvValidator.js), so
 * a key named like an `Object.prototype` member (`constructor`, `toString`, `valueOf`,
 * `hasOwnProperty`, `__proto__`) finds the inherited function there and throws `TypeError:
 * array.unshift is not a function`: a 500 instead of a validation error. No upstream issue
 * names it; Ajv's own handling of such names is ajv#1045 and ajv#2664. Here they are unknown
 * fields like any other, reported together with the known fields' problems.
 * @throws ValidationError naming every bad and every unknown field.
 */
function userFromJson(input: object, opts?: { patch: boolean }): User {
  const unknown = Object.keys(input).filter((key) => !KNOWN_FIELDS.has(key));
  if (unknown.length === 0) return User.fromJson(input, opts);
  const known = Object.fromEntries(Object.entries(input).filter(([key]) => KNOWN_FIELDS.has(key)));
  const data: Record<string, unknown> = {};
  try {
    User.fromJson(known, opts);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    Object.assign(data, err.data);
  }
  for (const key of unknown) {
    // defineProperty: an own data property even for `__proto__` (assignment would set the prototype).
    Object.defineProperty(data, key, {
      value: [
        { message: 'must NOT have additional properties', keyword: 'additionalProperties', params: {} },
      ],
      enumerable: true,
    });
  }
  throw new ValidationError({ type: 'ModelValidation', modelClass: User, data });
}

/** A ValidationError about one field, in objection's shape (`data[field]` = list of problems). */
export function fieldError(
  field: string,
  message: string,
  keyword: string,
  rowIndex?: number,
): ValidationError {
  const err = new ValidationError({
    type: 'ModelValidation',
    modelClass: User,
    data: { [field]: [{ message, keyword, params: {} }] },
  });
  return rowIndex === undefined ? err : withRowIndex(err, rowIndex);
}

/** An error that names the bulk-load row it is about (0-based), in `rowIndex`. */
export type RowError<E extends Error = Error> = E & { rowIndex: number };

/** Attaches the bulk-load row (0-based) to an error: `err.rowIndex`. */
export function withRowIndex<E extends Error>(err: E, rowIndex: number): RowError<E> {
  return Object.assign(err, { rowIndex });
}

/** db-errors' typings declare Error's constructor; the real one takes an argument object. */
export type DbErrorClass = new (args: Record<string, unknown>) => Error;

/** The UniqueViolationError of a bulk-load row whose email is already taken (0-based `rowIndex`). */
export function rowUniqueViolation(rowIndex: number): RowError {
  const nativeError = new Error(
    `rows[${rowIndex}]: duplicate key value violates unique constraint "users_email_lower_key"`,
  );
  // db-errors' typings declare Error's constructor; the real one takes this argument object.
  const err = new (UniqueViolationError as unknown as DbErrorClass)({
    nativeError,
    client: 'postgres',
    table: 'users',
    columns: ['email'],
    constraint: 'users_email_lower_key',
  });
  return withRowIndex(err, rowIndex);
}
