import { AsyncLocalStorage } from 'node:async_hooks';
import type { Knex } from 'knex';
import type { ForeignConnectionGuardMode } from '../../config/app-config.js';
import type { Logger } from '../../observability/logger.js';
import { ForeignConnectionError } from '../errors/errors.js';
import { wrapPoolAccess } from '../knex-internals.js';
import { currentTransaction, setTransactionGuard, transactionGuard } from './tx-context.js';

const ownAcquire = new AsyncLocalStorage<true>();
const INSTALLED = Symbol('pgdl.foreignConnectionGuard');

/** How the guard treats one transaction's second checkouts (one object per manager, shared by its transactions). */
export interface TransactionGuard {
  mode: ForeignConnectionGuardMode;
  logger: Logger;
}

/** Runs `acquire` as the transaction manager's own checkout, which the guard lets through. */
export function acquireOwn<T>(acquire: () => Promise<T>): Promise<T> {
  return ownAcquire.run(true, acquire);
}

/** Sets how the guard treats second checkouts made while `trx` is the ambient transaction. */
export function guardTransaction(trx: Knex.Transaction, guard: TransactionGuard): void {
  setTransactionGuard(trx, guard);
}

/**
 * Watches pool checkouts on `knex` (knex#1171, knex#1040): inside an ambient transaction, a
 * query on the base knex instead of the transaction takes a second pool connection. It runs
 * outside the transaction (it cannot see its uncommitted rows, and commits on its own), and on
 * a small pool it waits for a slot the transaction itself holds: a self-deadlock.
 *
 * Per transaction (`guardTransaction`, set by the manager that began it):
 * - 'off': nothing. 'warn': logs at warn with the acquiring stack, then proceeds (the stack ends
 *   in knex's runner: knex starts a query from a thenable job, which drops the caller's frames).
 * - 'error': rejects the query with `ForeignConnectionError` before it waits for a slot.
 *
 * The manager's own checkouts (`requiresNew`, `beginTx`) pass through `acquireOwn`. Installed
 * once per knex instance around its pool checkout (`wrapPoolAccess`), where every builder, `knex.raw`,
 * `knex.transaction()` and objection query acquires.
 */
export function installForeignConnectionGuard(knex: Knex): void {
  const marks = knex as unknown as { [INSTALLED]?: true };
  if (marks[INSTALLED]) return;
  marks[INSTALLED] = true;
  wrapPoolAccess(knex, ({ acquire }) => ({
    acquire: () => {
      const trx = ownAcquire.getStore() ? undefined : currentTransaction();
      const guard = trx && (transactionGuard(trx) as TransactionGuard | undefined);
      if (guard && guard.mode !== 'off') {
        if (guard.mode === 'error')
          return Promise.reject(
            new ForeignConnectionError(
              'A query inside a transaction asked for a second pool connection; run it on the transaction (trx) instead.',
            ),
          );
        guard.logger.warn(
          { stack: new Error('acquired here').stack },
          'a query inside a transaction took a second pool connection: it runs outside the transaction (knex#1171)',
        );
      }
      return acquire();
    },
  }));
}
