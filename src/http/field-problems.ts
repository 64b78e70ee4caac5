import type { UniqueViolationError, ValidationError } from '../db/index.js';
import type { FieldProblem } from './request-errors.js';

/*
 * Which input fields an error is about, for the `fields` of a 400 or 409 body. Only names and
 * fixed messages: a value from the request or the database is never echoed.
 */

/** One issue of Ajv's `validation` array, as Fastify attaches it to a validation error. */
export interface AjvIssue {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

const CONTEXT_PREFIX: Record<string, string> = {
  body: 'body',
  querystring: 'query',
  params: 'params',
  headers: 'headers',
};

/** The part of Fastify's validation error that names the failing fields. */
export interface AjvValidationError {
  validation?: AjvIssue[];
  /** Which part of the request failed: body, querystring, params or headers. */
  validationContext?: string;
}

/**
 * The fields of a Fastify schema-validation error, as `<part>.<path>` (`body.email`,
 * `query.limit`): a missing property is "is required", an unknown one "is not allowed", an
 * enum "must be one of a, b", anything else Ajv's own message (it names the rule, never the value).
 */
export function ajvFieldProblems(err: AjvValidationError): FieldProblem[] {
  const prefix = CONTEXT_PREFIX[err.validationContext ?? 'body'] ?? 'body';
  return (err.validation ?? []).map((v) => {
    const path = v.instancePath.split('/').filter(Boolean);
    let message = v.message ?? 'is invalid';
    if (v.keyword === 'additionalProperties') {
      path.push(String(v.params.additionalProperty));
      message = 'is not allowed';
    } else if (v.keyword === 'required') {
      path.push(String(v.params.missingProperty));
      message = 'is required';
    } else if (v.keyword === 'enum' && Array.isArray(v.params.allowedValues)) {
      // The allowed values are the schema's own, never the request's.
      message = `must be one of ${v.params.allowedValues.map(String).join(', ')}`;
    }
    return { field: [prefix, ...path].join('.'), message };
  });
}

/**
 * The fields of objection's `ValidationError` (its `data` maps a property to its issues) as
 * `body.<property>`, with the first issue's message; bulk-load keys (`rows[i].email`) lose
 * their row prefix, which the response's line number replaces.
 */
export function modelFieldProblems(err: ValidationError): FieldProblem[] {
  // Objection's ValidationError.data: { [property]: [{ message, keyword, params }] }.
  const data = (err as { data?: unknown }).data;
  if (!data || typeof data !== 'object') return [];
  return Object.entries(data as Record<string, unknown>).map(([key, issues]) => {
    const first: unknown = Array.isArray(issues) ? issues[0] : undefined;
    const message = (first as { message?: unknown } | undefined)?.message;
    // Bulk-load errors key fields as `rows[<index>].email`; the line number says which row.
    const field = key.replace(/^rows\[\d+\]\.?/, '') || 'row';
    return { field: `body.${field}`, message: typeof message === 'string' ? message : 'is invalid' };
  });
}

/**
 * The columns of a unique violation as `body.<camelCaseColumn>` "is already taken"; an
 * expression index's column (`lower(email)`) by the column inside it. Never the values.
 * @returns undefined when the error names no column.
 */
export function uniqueFieldProblems(
  err: InstanceType<typeof UniqueViolationError>,
): FieldProblem[] | undefined {
  const columns = (err as { columns?: string[] }).columns ?? [];
  // Column names are part of our schema, not user data; values are never echoed.
  // An expression index reports its expression (`lower(email)`): name the column inside it.
  const names = columns.map(innerColumn).filter((c) => c !== undefined);
  return names.length
    ? names.map((c) => ({ field: `body.${camel(c)}`, message: 'is already taken' }))
    : undefined;
}

/**
 * The identifier at the end of `text`, before any closing parentheses (`lower(email)` ->
 * `email`). Scanned by hand: the equivalent `/([A-Za-z_][A-Za-z0-9_]*)\)*$/` is retried from
 * every position of a long identifier run, quadratic in its length.
 */
function innerColumn(text: string): string | undefined {
  let end = text.length;
  while (end > 0 && text[end - 1] === ')') end -= 1;
  let start = end;
  while (start > 0 && /\w/.test(text[start - 1]!)) start -= 1;
  while (start < end && /\d/.test(text[start]!)) start += 1; // an identifier starts with a letter or _
  return start < end ? text.slice(start, end) : undefined;
}

function camel(s: string): string {
  return s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}
