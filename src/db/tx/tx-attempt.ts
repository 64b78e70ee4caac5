import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { classifyError } from '../errors/classify-error.js';
import { TransactionStateError, TransactionTimeoutError } from '../errors/errors.js';
import { runInTransaction, type TxFn } from './tx-context.js';
import type { TxHookSet } from './tx-hooks.js';
import type { ResolvedTxOptions } from './tx-options.js';
import type { TxStarter } from './tx-starter.js';

/** After the deadline, cancel + ROLLBACK get this long before the caller is told, ms. */
const TIMEOUT_GRACE_MS = 150;

/** A withTransaction callback's commit()/rollback(): the manager ends the transaction itself. */
const refuseManualEnd = (): Promise<never> =>
  Promise.reject(
    new TransactionStateError(
      'withTransaction() commits and rolls back by itself: return to commit, throw to roll back.',
    ),
  );
const MANUAL_END_REFUSED = { commit: refuseManualEnd, rollback: refuseManualEnd };

/**
 * One attempt of an outermost transaction: begins it through `starter`, runs `fn` as the
 * ambient transaction (raced with the deadline when there is one), commits when `fn` resolves
 * and rolls back when it throws. The callback's own `commit()`/`rollback()` are refused.
 * No retry here: the caller's loop decides whether another attempt follows.
 * @throws TransactionTimeoutError at the deadline (cancel + ROLLBACK get 150 ms of grace
 *   first), also for a server-side 57014 just before it; otherwise the BEGIN, callback or
 *   COMMIT error unchanged (the connection is rolled back and released, or destroyed).
 */
export async function runAttempt<T>(
  starter: TxStarter,
  hooks: TxHookSet,
  fn: TxFn<T>,
  o: ResolvedTxOptions,
  started: number,
  attempt: number,
): Promise<T> {
  const onStatement = hooks.hasStatement
    ? hooks.statementListener({ attempt, isolationLevel: o.isolationLevel, readOnly: o.readOnly })
    : undefined;
  const tx = await starter.begin(o, started, onStatement);
  const trx = tx.trx;
  Object.assign(trx, MANUAL_END_REFUSED);
  let result: T;
  try {
    const body = runInTransaction(trx, fn);
    // Without a deadline there is nothing to race: no extra promise per transaction.
    result = tx.hasDeadline
      ? await Promise.race([body, tx.expiry.then(() => Promise.reject(tx.timeoutError()))])
      : await body;
  } catch (err) {
    if (tx.expired || isOwnDeadline(err, o, started)) {
      // Reject at the deadline (prisma#17245); cancel + ROLLBACK get a short grace to finish first.
      await Promise.race([tx.rollback(tx.timeoutError()), delay(TIMEOUT_GRACE_MS)]);
      throw err instanceof TransactionTimeoutError ? err : tx.timeoutError(err);
    }
    await tx.rollback(err);
    throw err;
  }
  await tx.commit();
  return result;
}

/** A server-side 57014 that arrived just before our own timer: it is our deadline all the same. */
function isOwnDeadline(err: unknown, o: ResolvedTxOptions, started: number): boolean {
  return (
    o.timeoutMs !== undefined &&
    classifyError(err).sqlState === '57014' &&
    performance.now() >= started + o.timeoutMs - 50
  );
}
