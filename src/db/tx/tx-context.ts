import { AsyncLocalStorage } from 'node:async_hooks';
import type { Knex } from 'knex';
import { TransactionStateError } from '../errors/errors.js';
import { transactionClientOf } from '../knex-internals.js';

/**
 * The ambient transaction of the current async call chain (after Slonik's
 * `contexts/transactionContext.ts`). TxManager enters it; repositories read it
 * when no explicit executor is passed. It follows awaits, timers and `Promise.all`;
 * concurrent call chains each see their own.
 */
export const transactionContext = new AsyncLocalStorage<Knex.Transaction>();

/** A transaction callback, as `TxManager.withTransaction` takes it. */
export type TxFn<T> = (trx: Knex.Transaction) => Promise<T>;

/**
 * Runs `fn(trx)` with `trx` as the ambient transaction. A synchronous throw becomes a
 * rejection and a plain value a resolution. No closure per call: the hot path of every
 * transaction goes through here.
 */
export function runInTransaction<T>(trx: Knex.Transaction, fn: TxFn<T>): Promise<T> {
  return transactionContext.run(trx, invoke, fn, trx);
}

function invoke<T>(fn: TxFn<T>, trx: Knex.Transaction): Promise<T> {
  try {
    const result = fn(trx);
    // The common case, an async callback, already returned a promise: no second one.
    return result instanceof Promise ? result : Promise.resolve(result);
  } catch (err) {
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the callback's own value, unchanged
    return Promise.reject(err);
  }
}

/*
 * What the manager knows about a transaction travels on the transaction's own knex client
 * (a plain object knex creates per transaction), under symbol keys invisible to JSON,
 * for...in and knex: no WeakMap or WeakSet entry per transaction (their ephemeron bookkeeping
 * showed in the collector's time), and not on the transaction object itself, a function with
 * dozens of properties where adding one measured several microseconds.
 */
const ENDED = Symbol('pgdl.transactionEnded');
const HANDLE = Symbol('pgdl.transactionHandle');
const GUARD = Symbol('pgdl.foreignConnectionGuard');
const SANDBOX = Symbol('pgdl.rollbackSandbox');
type Marks = { [ENDED]?: true; [HANDLE]?: unknown; [GUARD]?: unknown; [SANDBOX]?: true };
const marksOf = (trx: Knex.Transaction): Marks => transactionClientOf(trx);

/** Attaches the manager's handle to a transaction (see `handleOf` in root-tx). */
export function setTransactionHandle(trx: Knex.Transaction, handle: unknown): void {
  marksOf(trx)[HANDLE] = handle;
}

/** The handle attached with `setTransactionHandle`, if any. */
export function transactionHandle(trx: Knex.Transaction): unknown {
  return marksOf(trx)[HANDLE];
}

/** Attaches the foreign-connection guard's settings to a transaction. */
export function setTransactionGuard(trx: Knex.Transaction, guard: unknown): void {
  marksOf(trx)[GUARD] = guard;
}

/** The guard settings attached with `setTransactionGuard`, if any. */
export function transactionGuard(trx: Knex.Transaction): unknown {
  return marksOf(trx)[GUARD];
}

/**
 * Marks a transaction as a rollback sandbox (`withRollback` of the testing entry): every
 * transaction begun inside it, whatever its propagation, becomes a savepoint of it.
 */
export function markSandbox(trx: Knex.Transaction): void {
  marksOf(trx)[SANDBOX] = true;
}

/** True for a sandbox transaction and the savepoints begun inside it. */
export function isSandbox(trx: Knex.Transaction): boolean {
  return marksOf(trx)[SANDBOX] === true;
}

/**
 * Marks a transaction as over (committed, rolled back, or timed out). From then on
 * `currentTransaction()` no longer returns it and `executorFor()` refuses it, so a floating
 * promise of the callback cannot run outside the transaction unnoticed (drizzle#6083).
 */
export function markTransactionEnded(trx: Knex.Transaction): void {
  marksOf(trx)[ENDED] = true;
}

/** True once the transaction has ended (by TxManager or by knex). */
export function isTransactionEnded(trx: Knex.Transaction): boolean {
  return marksOf(trx)[ENDED] === true || trx.isCompleted();
}

/** The transaction running in this async call chain, if any and not yet ended. */
export function currentTransaction(): Knex.Transaction | undefined {
  const trx = transactionContext.getStore();
  return trx && !isTransactionEnded(trx) ? trx : undefined;
}

/** Where a repository call runs: an explicit knex or transaction. */
export type Executor = Knex | Knex.Transaction;

/**
 * An explicit executor, else the ambient transaction, else the pool.
 * @throws TransactionStateError when this call chain's transaction has already ended (a
 *   floating promise outliving its callback): running on the pool instead would silently
 *   write outside the transaction the code was written for.
 */
export function executorFor(knex: Knex, explicit?: Executor): Executor {
  if (explicit) return explicit;
  const trx = transactionContext.getStore();
  if (!trx) return knex;
  if (isTransactionEnded(trx))
    throw new TransactionStateError(
      'This call chain belongs to a transaction that has already ended; await the work inside the callback.',
    );
  return trx;
}
