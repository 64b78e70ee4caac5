import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type { Knex } from 'knex';
import type pg from 'pg';
import { from as copyFrom, type CopyStreamQuery } from 'pg-copy-streams';
import {
  CheckViolationError,
  UniqueViolationError,
  translateError,
  withDriverConnection,
} from '../db/index.js';
import {
  fieldError,
  validateNewUserRow,
  withRowIndex,
  type DbErrorClass,
  type ValidNewUser,
} from './user-input.js';

/** Rows of a bulk load: an array, any iterable, or an async iterable (a stream of objects). */
export type UserRows = Iterable<unknown> | AsyncIterable<unknown>;

/** Bytes of COPY text gathered before one write to the socket. */
const WRITE_BATCH_BYTES = 64 * 1024;

/**
 * Loads users with `COPY users (email, name, status) FROM STDIN` on the connection of a
 * transaction (a savepoint when `executor` is itself a transaction): all rows or none.
 *
 * Each row is validated before it is written; the first invalid row aborts the COPY
 * (CopyFail), the transaction rolls back, and the caller gets that row's ValidationError
 * (`rowIndex`, keys `rows[i].field`). A row the server rejects (a duplicate email, in the
 * load or in the table) becomes UniqueViolationError / CheckViolationError with `rowIndex`
 * taken from the server's "COPY users, line N" context. Rows are consumed as they come,
 * with socket backpressure, so an async iterable is never held in memory whole.
 *
 * @returns the number of rows written (0 for no rows).
 * @throws ValidationError on `rows` when it is not iterable.
 */
export async function copyUsersIn(executor: Knex | Knex.Transaction, rows: UserRows): Promise<number> {
  if (!isIterable(rows)) throw fieldError('rows', 'must be an iterable or async iterable of users', 'type');
  return executor.transaction(async (trx) => {
    return withDriverConnection<pg.PoolClient, number>(trx, (conn) => copyRows(conn, rows));
  });
}

async function copyRows(conn: pg.PoolClient, rows: UserRows): Promise<number> {
  const stream: CopyStreamQuery = conn.query(copyFrom('COPY users (email, name, status) FROM STDIN'));
  let serverError: Error | undefined;
  // From birth: an ErrorResponse during the COPY is emitted as 'error' at any moment.
  stream.on('error', (err) => {
    serverError ??= err;
  });
  let index = 0;
  let batch = '';
  try {
    for await (const row of rows) {
      if (serverError) break;
      batch += copyLine(validateNewUserRow(row, index));
      index += 1;
      if (batch.length >= WRITE_BATCH_BYTES) {
        const flushed = stream.write(batch);
        batch = '';
        if (!flushed && !serverError) await once(stream, 'drain');
      }
    }
  } catch (err) {
    if (serverError) throw translate(serverError);
    // Our own failure (an invalid row, a failing source): CopyFail makes the server drop
    // the whole COPY; wait until it has answered so the connection is idle again.
    stream.destroy(err as Error);
    await finished(stream).catch(() => {});
    throw err;
  }
  if (serverError) throw translate(serverError);
  stream.end(batch);
  try {
    await finished(stream);
  } catch (err) {
    throw translate(err);
  }
  return stream.rowCount;
}

function isIterable(value: unknown): value is UserRows {
  return (
    typeof value === 'object' && value !== null && (Symbol.iterator in value || Symbol.asyncIterator in value)
  );
}

/** One line of COPY text format: tab-separated, with backslash, tab, CR and LF escaped. */
function copyLine(user: ValidNewUser): string {
  return `${escapeCopyText(user.email)}\t${escapeCopyText(user.name)}\t${user.status}\n`;
}

function escapeCopyText(value: string): string {
  return value.replace(/[\\\t\n\r]/g, (c) =>
    c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r',
  );
}

/**
 * Turns an error raised by the COPY into the typed error (`translateError`), naming the row
 * (0-based) when the server's context names its line.
 */
function translate(err: unknown): unknown {
  const pgErr = err as { code?: string; where?: string; constraint?: string; message?: string };
  const line = /COPY users, line (\d+)/.exec(pgErr.where ?? '');
  if (!line?.[1]) return translateError(err);
  const rowIndex = Number(line[1]) - 1;
  const args = { nativeError: err, client: 'postgres', table: 'users', constraint: pgErr.constraint ?? '' };
  let typed: Error;
  // db-errors' typings declare Error's constructor; the real one takes this argument object.
  if (pgErr.code === '23505')
    typed = new (UniqueViolationError as unknown as DbErrorClass)({ ...args, columns: ['email'] });
  else if (pgErr.code === '23514') typed = new (CheckViolationError as unknown as DbErrorClass)(args);
  else {
    const other = translateError(err);
    return other instanceof Error ? withRowIndex(other, rowIndex) : other;
  }
  // The server's message names the constraint, never the values (those are in `detail`).
  typed.message = `rows[${rowIndex}]: ${pgErr.message ?? 'rejected by the server'}`;
  return withRowIndex(typed, rowIndex);
}
