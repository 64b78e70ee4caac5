import type { Knex } from 'knex';
import { runStatement } from '../db/knex-internals.js';
import { rowUniqueViolation, type ValidNewUser } from './user-input.js';

/** One row's placeholders, per row of a chunk: `($1, $2, $3)`, `($4, $5, $6)`... */
function insertText(rows: number): string {
  const values: string[] = new Array<string>(rows);
  for (let i = 0, n = 1; i < rows; i++, n += 3) values[i] = `($${n}, $${n + 1}, $${n + 2})`;
  return `insert into "users" ("email", "name", "status") values ${values.join(', ')} on conflict do nothing returning "email"`;
}

/**
 * Inserts validated users with multi-row INSERTs of `chunkSize` rows in one transaction (a
 * savepoint when `executor` is itself a transaction): all rows or none.
 *
 * Each INSERT says `ON CONFLICT DO NOTHING RETURNING email`, so a conflict does not abort the
 * transaction with a 23505 that names no row; the rows missing from RETURNING tell exactly
 * which one was skipped, and the throw rolls every chunk back.
 *
 * @returns the number of rows inserted (all of them).
 * @throws UniqueViolationError with `rowIndex` for the first row whose email was taken,
 *   in the table or earlier in `rows`.
 */
export async function insertUsersInChunks(
  executor: Knex | Knex.Transaction,
  rows: readonly ValidNewUser[],
  chunkSize: number,
): Promise<number> {
  // The SQL knex's builder makes for `.insert(chunk).onConflict().ignore().returning('email')`,
  // built once per chunk size: knex's compile and `?` -> `$n` rewriting cost about 1 µs a row.
  const fullText = rows.length >= chunkSize ? insertText(chunkSize) : undefined;
  return executor.transaction(async (trx) => {
    for (let start = 0; start < rows.length; start += chunkSize) {
      const chunk = rows.slice(start, start + chunkSize);
      const bindings: string[] = new Array<string>(chunk.length * 3);
      for (let i = 0; i < chunk.length; i++) {
        const row = chunk[i]!;
        bindings[i * 3] = row.email;
        bindings[i * 3 + 1] = row.name;
        bindings[i * 3 + 2] = row.status;
      }
      const sql = chunk.length === chunkSize && fullText !== undefined ? fullText : insertText(chunk.length);
      const res = await runStatement(trx, { sql, bindings });
      const returned = res.rows as Array<{ email: string }>;
      if (returned.length !== chunk.length) throw rowUniqueViolation(start + firstSkipped(chunk, returned));
    }
    return rows.length;
  });
}

/**
 * Index in `chunk` of the first row ON CONFLICT DO NOTHING skipped. Rows of one INSERT are
 * inserted in order, so among equal emails the first is kept; exact strings are compared
 * (not a JS lower-casing, which may differ from the server's `lower()`).
 */
function firstSkipped(chunk: readonly ValidNewUser[], returned: ReadonlyArray<{ email: string }>): number {
  const left = new Map<string, number>();
  for (const { email } of returned) left.set(email, (left.get(email) ?? 0) + 1);
  for (const [i, row] of chunk.entries()) {
    const n = left.get(row.email) ?? 0;
    if (n === 0) return i;
    left.set(row.email, n - 1);
  }
  return chunk.length - 1;
}
