import type { Knex } from 'knex';
import { rowUniqueViolation, type ValidNewUser } from './user-input.js';

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
  return executor.transaction(async (trx) => {
    for (let start = 0; start < rows.length; start += chunkSize) {
      const chunk = rows.slice(start, start + chunkSize);
      const returned: Array<{ email: string }> = await trx('users')
        .insert(chunk)
        .onConflict()
        .ignore()
        .returning('email');
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
