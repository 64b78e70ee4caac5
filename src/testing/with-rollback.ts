import type { Knex } from 'knex';
import type { TxManager } from '../db/tx/tx-manager.js';
import { markSandbox } from '../db/tx/tx-context.js';

/** The rejection that ends a sandbox; never seen by callers. */
class SandboxRollback extends Error {
  constructor() {
    super('withRollback: the sandbox transaction is always rolled back');
    this.name = 'SandboxRollback';
  }
}

/**
 * Runs `fn` inside a transaction that is always rolled back: a test's writes never survive it,
 * and it leaves the database as it found it (Ecto's SQL sandbox, Spring's rollback-by-default
 * tests). Inside, the code under test works as usual and sees its own writes:
 * - repositories (and `executorFor`) join the sandbox as their ambient transaction;
 * - `withTransaction`, `withReadOnlyTransaction`, `withTimeout` and `beginTx` on the same
 *   database, whatever their `propagation`, run as savepoints of it: a callback that throws
 *   rolls back to its savepoint only, as a real rollback would look to the caller.
 *
 * The sandbox follows the async call chain (AsyncLocalStorage), so it works with mocha,
 * `node:test`, vitest and jest alike, and through `app.inject()` of a Fastify app. What a
 * savepoint cannot reproduce: another connection does not see the writes (`requiresNew` runs
 * in the sandbox too, and a query on `db.driver()` outside any transaction runs on another
 * connection, outside it); a retry never happens (nothing is retried inside a transaction);
 * the sandbox's isolation level, read-only mode and timeout are the only ones in force; commit
 * hooks never fire.
 *
 * @returns what `fn` returned (after the rollback).
 * @throws what `fn` threw (after the rollback).
 *
 * @example
 * ```ts
 * it('creates a user', () =>
 *   withRollback(db, async () => {
 *     await service.register({ email: 'ada@example.com', name: 'Ada' }); // commits, as far as it knows
 *     expect(await repo.findByEmail('ada@example.com')).to.exist;
 *   })); // ...and nothing is left afterwards
 * ```
 */
export async function withRollback<T>(
  db: { readonly txManager: TxManager },
  fn: () => Promise<T>,
): Promise<T> {
  const end = new SandboxRollback();
  let result: { value: T } | undefined;
  try {
    await db.txManager.withTransaction(
      async (trx: Knex.Transaction) => {
        markSandbox(trx);
        result = { value: await fn() };
        throw end;
      },
      { retry: false },
    );
  } catch (err) {
    if (err !== end) throw err;
  }
  if (!result) throw new Error('withRollback: the sandbox ended without a result');
  return result.value;
}
