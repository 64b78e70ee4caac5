import { createHash } from 'node:crypto';
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
  readonly #statements = new Map<string, { sql: string; name: string | undefined }>();
  readonly #prepared: boolean;

  /**
   * @param opts.prepared Run every statement as a named prepared statement (parsed and planned
   *   once per connection, about half the server's CPU of a point read). The name is the
   *   shape's key and a hash of its SQL text, so one name never stands for two texts (pg
   *   refuses that) even across versions. Off behind PgBouncer in transaction mode, where a
   *   statement prepared on one server connection is missing on the next.
   */
  constructor(opts: { prepared: boolean }) {
    this.#prepared = opts.prepared;
  }

  /**
   * The rows of the statement of shape `key` run with `bindings` on `executor`. The first call
   * of a shape compiles `build()`, which must bind exactly `bindings` in that order; this is
   * checked, so a knex that orders bindings differently fails loudly instead of binding the
   * wrong values.
   *
   * @param key The shape's name, unique per cache: `[a-z0-9_]`, at most 50 characters (it
   *   prefixes the prepared statement's name, and PostgreSQL keeps 63).
   * @throws Error when `build()` binds other values than `bindings`; otherwise whatever the
   *   statement throws (untranslated, as a builder would).
   */
  rows<R>(
    executor: Executor,
    key: string,
    bindings: readonly Knex.Value[],
    build: () => Knex.QueryBuilder,
  ): Promise<R[]> {
    let statement = this.#statements.get(key);
    if (statement === undefined) {
      const compiled = build().toSQL();
      if (!isDeepStrictEqual([...compiled.bindings], [...bindings]))
        throw new Error(
          `Statement ${key}: knex binds ${compiled.bindings.length} values in another order than expected.`,
        );
      // `$n` placeholders: knex's `?` rewriting then has nothing to do on each run.
      const sql = compiled.toNative().sql;
      const name = this.#prepared
        ? `${key}_${createHash('sha256').update(sql).digest('hex').slice(0, 12)}`
        : undefined;
      statement = { sql, name };
      this.#statements.set(key, statement);
    }
    return runStatement(executor, { sql: statement.sql, bindings, name: statement.name }).then(
      (result) => result.rows as R[],
    );
  }
}
