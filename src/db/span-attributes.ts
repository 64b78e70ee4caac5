import type { Attributes } from '@opentelemetry/api';
import type { Knex } from 'knex';
import { sqlStateOf } from './errors/classify-error.js';
import { connectionTargetOf } from './knex-internals.js';

/*
 * Span attributes shared by the data layer's spans, after OpenTelemetry's database semantic
 * conventions. Only names, numbers and SQLSTATEs: never an error message (a server message
 * can echo a value, and knex appends the statement to its errors), never a bind value.
 */

/**
 * `db.system.name`, `db.namespace` (the database), `server.address` and `server.port` of the
 * server `knex` connects to (what it was configured with; nothing is looked up).
 */
export function dbSpanAttributes(knex: Knex): Attributes {
  const { host, port, database } = connectionTargetOf(knex);
  const attributes: Attributes = { 'db.system.name': 'postgresql' };
  if (database !== undefined) attributes['db.namespace'] = database;
  if (host !== undefined) attributes['server.address'] = host;
  if (port !== undefined) attributes['server.port'] = port;
  return attributes;
}

/**
 * `error.type` and, when the server sent one, `db.response.status_code` (the SQLSTATE) of a
 * failure. `error.type` is the SQLSTATE for a statement (`bySqlState`, as the conventions ask of
 * a database response), otherwise the error's class name (what the caller receives, e.g.
 * `SerializationError`).
 */
export function failureAttributes(err: unknown, bySqlState = false): Attributes {
  const sqlState = sqlStateOf(err);
  const type = bySqlState && sqlState !== undefined ? sqlState : errorClassOf(err);
  return sqlState === undefined
    ? { 'error.type': type }
    : { 'error.type': type, 'db.response.status_code': sqlState };
}

/** The class name of `err` (`_OTHER` when it has none worth reporting). */
function errorClassOf(err: unknown): string {
  if (typeof err !== 'object' || err === null) return '_OTHER';
  const ctor = (err as { constructor?: { name?: unknown } }).constructor?.name;
  if (typeof ctor === 'string' && ctor !== '' && ctor !== 'Object') return ctor;
  const name = (err as { name?: unknown }).name;
  return typeof name === 'string' && name !== '' ? name : '_OTHER';
}
