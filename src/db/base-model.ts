import { Model, ValidationError, raw, snakeCaseMappers, type ModelOptions, type Pojo } from 'objection';

/**
 * The base of every Objection model here. Columns are snake_case in the database and
 * camelCase in code (`snakeCaseMappers`, applied by the model, so it works on any knex
 * instance whether or not that instance maps identifiers itself). `updated_at` is set to the
 * database clock on every model update; `created_at`/`updated_at` defaults come from the
 * table, so bulk loads and hand-written SQL get the same clock.
 *
 * Validation rejects strings containing NUL (U+0000) with a `ValidationError` naming the
 * field: PostgreSQL text cannot hold it and would fail the statement with 22021 instead.
 * Properties named in `hiddenFields` are left out of `toJSON()`.
 */
export class BaseModel extends Model {
  static override columnNameMappers = snakeCaseMappers();

  /** Properties kept out of `toJSON()` (still present on the instance). */
  static hiddenFields: readonly string[] = [];

  override $beforeUpdate(): void {
    // A query property: objection sends it as SQL, not as a bind value.
    (this as unknown as { updatedAt: unknown }).updatedAt = raw('now()');
  }

  override $validate(json: Pojo, options: ModelOptions): Pojo {
    const nulData = nulErrors(json);
    let validated: Pojo;
    try {
      validated = super.$validate(json, options);
    } catch (err) {
      if (!(err instanceof ValidationError) || Object.keys(nulData).length === 0) throw err;
      throw validationError(this.constructor as typeof BaseModel, { ...(err.data as object), ...nulData });
    }
    if (Object.keys(nulData).length > 0) throw validationError(this.constructor as typeof BaseModel, nulData);
    return validated;
  }

  override $formatJson(json: Pojo): Pojo {
    const formatted = super.$formatJson(json);
    for (const field of (this.constructor as typeof BaseModel).hiddenFields) delete formatted[field];
    return formatted;
  }
}

type ErrorData = Record<string, Array<{ message: string; keyword: string; params: object }>>;

function nulErrors(json: Pojo): ErrorData {
  const data: ErrorData = {};
  for (const [key, value] of Object.entries(json)) {
    if (typeof value === 'string' && value.includes('\u0000')) {
      data[key] = [{ message: 'must not contain NUL (U+0000) characters', keyword: 'noNul', params: {} }];
    }
  }
  return data;
}

function validationError(modelClass: typeof BaseModel, data: ErrorData): ValidationError {
  return new ValidationError({ type: 'ModelValidation', modelClass, data });
}
