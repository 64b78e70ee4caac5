import {
  context,
  SpanKind,
  SpanStatusCode,
  type Attributes,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import type { Knex } from 'knex';
import { onQueryEvents, type QueryEvent } from './query-events.js';
import { failureAttributes } from './span-attributes.js';

/** Statements in flight past this many are ended unanswered, oldest first (a lost event must not leak spans). */
const MAX_OPEN_SPANS = 10_000;

/** The first keyword of `sql`, upper-cased (`SELECT`, `INSERT`, `WITH`...), if it starts with one. */
function operationOf(sql: string): string | undefined {
  const word = /^\s*([A-Za-z]+)/.exec(sql)?.[1];
  return word?.toUpperCase();
}

/**
 * Makes a CLIENT span per statement that knex runs on `knex` (its `query`, `query-response` and
 * `query-error` events, which also fire inside transactions), as a child of the span active when
 * the statement starts: the transaction's inside `withTransaction`, the HTTP request's outside.
 *
 * Contract:
 * - Name: the operation (`SELECT`, `INSERT`...), else `postgresql`. Attributes: `dbAttributes`
 *   (system, namespace, server), `db.operation.name`, and `db.query.text`, the SQL as knex sends
 *   it, with `$1` placeholders: never a bind value (and never `toQuery()`).
 * - A failed statement: status ERROR, `error.type` and `db.response.status_code` = the
 *   SQLSTATE. The error message is not recorded (it can echo values).
 * - Statements knex sends without a query id are not traced: knex's own BEGIN, SAVEPOINT,
 *   COMMIT and ROLLBACK, and the transaction manager's settings and xid lookup (no response
 *   event marks their end; the transaction span covers them).
 *
 * @returns a function that detaches the listeners (spans still open are ended).
 */
export function attachQueryTracer(knex: Knex, tracer: Tracer, dbAttributes: Attributes): () => void {
  // Open spans by query uid; an entry lives from 'query' to its response or error.
  const open = new Map<string, Span>();
  const take = (q: QueryEvent): Span | undefined => {
    const uid = q.__knexQueryUid;
    if (uid === undefined) return undefined;
    const span = open.get(uid);
    open.delete(uid);
    return span;
  };

  const onQuery = (q: QueryEvent): void => {
    const uid = q.__knexQueryUid;
    if (uid === undefined || typeof q.sql !== 'string') return;
    const operation = operationOf(q.sql);
    const attributes: Attributes = { ...dbAttributes, 'db.query.text': q.sql };
    if (operation !== undefined) attributes['db.operation.name'] = operation;
    const span = tracer.startSpan(
      operation ?? 'postgresql',
      { kind: SpanKind.CLIENT, attributes },
      context.active(),
    );
    if (open.size >= MAX_OPEN_SPANS) {
      const [oldest, stale] = open.entries().next().value as [string, Span];
      open.delete(oldest);
      stale.end();
    }
    open.set(uid, span);
  };
  const onResponse = (_response: unknown, q: QueryEvent): void => {
    take(q)?.end();
  };
  const onError = (err: unknown, q: QueryEvent): void => {
    const span = take(q);
    if (span === undefined) return;
    span.setAttributes(failureAttributes(err, true));
    span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  };

  const unsubscribe = onQueryEvents(knex, { onQuery, onResponse, onError });
  return () => {
    unsubscribe();
    for (const span of open.values()) span.end();
    open.clear();
  };
}
