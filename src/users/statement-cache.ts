import { isDeepStrictEqual } from 'node:util';
import type { Knex } from 'knex';
import { runStatement, type Executor } from '../db/index.js';

/**
 * SQL text compiled by knex once per statement shape, then run with `runStatement` (no knex
 * builder, Raw or Runner per call): the users API's statements that run on every request
 * (point reads, list pages, insert, update).
 *
 * knex compiles a query builder anew on every run: for the primary-key read that was ~25 µs of
 * the ~200 µs of client CPU of a `GET /users/:id` (docs/benchmarks.md), about 3x what compiling
 * the raw text costs. Within one shape the SQL text never varies (that is also what lets it
 * be a named prepared statement), so one compile serves every later call. The statement
 * still runs through knex's client: the pool and its gate, the ambient transaction, and the
 * `query` events that log and time every statement.
 */
export class StatementCache {
  readonly #sql = new Map<string, string>();

  /**
   * The rows of the statement of shape `key` run with `bindings` on `executor`. The first call
   * of a shape compiles `build()`, which must bind exactly `bindings` in that order; this is
   * checked, so a knex that orders bindings differently fails loudly instead of binding the
   * wrong values.
   *
   * @param name A prepared statement name for this shape (pg prepares it once per
   *   connection), or undefined for an unnamed statement.
   * @throws Error when `build()` binds other values than `bindings`; otherwise whatever the
   *   statement throws (untranslated, as a builder would).
   */
  rows<R>(
    executor: Executor,
    key: string,
    bindings: readonly Knex.Value[],
    build: () => Knex.QueryBuilder,
    name?: string,
  ): Promise<R[]> {
    let sql = this.#sql.get(key);
    if (sql === undefined) {
      const compiled = build().toSQL();
      if (!isDeepStrictEqual([...compiled.bindings], [...bindings]))
        throw new Error(
          `Statement ${key}: knex binds ${compiled.bindings.length} values in another order than expected.`,
        );
      // `$n` placeholders: knex's `?` rewriting then has nothing to do on each run.
      sql = compiled.toNative().sql;
      this.#sql.set(key, sql);
    }
    return runStatement(executor, { sql, bindings, name }).then((result) => result.rows as R[]);
  }
}
