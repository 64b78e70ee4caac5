import { AsyncLocalStorage } from 'node:async_hooks';
import type { Knex } from 'knex';

/**
 * The ambient transaction of the current async call chain (after Slonik's
 * `contexts/transactionContext.ts`). TxManager enters it; repositories read it
 * when no explicit executor is passed.
 */
export const transactionContext = new AsyncLocalStorage<Knex.Transaction>();

/** The transaction running in this async call chain, if any. */
export function currentTransaction(): Knex.Transaction | undefined {
  return transactionContext.getStore();
}

/** An explicit executor, else the ambient transaction, else the pool. */
export function executorFor(knex: Knex, explicit?: Knex | Knex.Transaction): Knex | Knex.Transaction {
  return explicit ?? currentTransaction() ?? knex;
}
