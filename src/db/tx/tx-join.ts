import { performance } from 'node:perf_hooks';
import type { Knex } from 'knex';
import type { ForeignConnectionGuardMode } from '../../config/app-config.js';
import type { Logger } from '../../observability/logger.js';
import type { TxOptions } from '../database.js';
import { TransactionStateError } from '../errors/errors.js';
import { guardTransaction } from './foreign-connection-guard.js';
import { isTransactionEnded, runInTransaction, type TxFn } from './tx-context.js';
import { handleOf } from './tx-handle.js';
import { joinConflicts, type ResolvedTxOptions } from './tx-options.js';
import { SavepointTx } from './tx-savepoint.js';

/**
 * `withTransaction` inside an ambient transaction (propagation 'required' or 'nested'):
 * 'required' runs `fn` on the ambient transaction itself, 'nested' in a savepoint of it whose
 * failure rolls back to the savepoint only. Options that the call sets explicitly (isolation
 * level, read-only, deferrable, timeout) must be compatible with what the ambient transaction
 * guarantees. No retry here: retry happens at the outermost transaction only.
 * @throws TransactionStateError when the ambient transaction has ended or the options conflict
 *   with it; otherwise the callback's error unchanged (after the savepoint rolled back).
 */
export async function joinAmbient<T>(
  fn: TxFn<T>,
  o: ResolvedTxOptions,
  ambient: Knex.Transaction,
  guardMode: ForeignConnectionGuardMode,
  logger: Logger,
): Promise<T> {
  if (isTransactionEnded(ambient))
    throw new TransactionStateError(
      'The ambient transaction has already ended; await the work inside its callback.',
    );
  const parent = handleOf(ambient);
  if (
    parent &&
    ['isolationLevel', 'readOnly', 'deferrable', 'timeoutMs'].some((k) =>
      o.explicit.has(k as keyof TxOptions),
    )
  ) {
    const conflicts = joinConflicts(await parent.root.traits(), o, performance.now());
    if (conflicts.length > 0)
      throw new TransactionStateError(`Cannot join the ambient transaction: ${conflicts.join('; ')}.`);
  }
  if (o.propagation === 'required') return fn(ambient);
  // A transaction TxManager did not start (plain knex): knex's own savepoint.
  if (!parent) return ambient.transaction((trx) => runInTransaction(trx, fn));
  const sp = await SavepointTx.begin(parent);
  guardTransaction(sp.trx, guardMode, logger);
  let result: T;
  try {
    result = await runInTransaction(sp.trx, fn);
  } catch (err) {
    await sp.rollback(err);
    throw err;
  }
  await sp.commit();
  return result;
}
