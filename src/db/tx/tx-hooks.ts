import type { Logger } from '../../observability/logger.js';
import type { RetryReason, TxOutcome } from '../../observability/metrics.js';
import type { IsolationLevel } from '../database.js';

/** What `TxHooks.beforeRetry` learns about the retry about to happen. */
export interface TxRetryInfo {
  /** The attempt that just failed, 1-based (the retry will be attempt + 1). */
  readonly attempt: number;
  /** The backoff the manager will wait before the retry, ms (already drawn, jitter included). */
  readonly delayMs: number;
  /** Why the attempt failed (the `reason` label of `db_transaction_retries_total`). */
  readonly reason: RetryReason;
  /** The SQLSTATE of the failure, when the server sent one. */
  readonly sqlState?: string;
  /** The failure itself, untranslated. */
  readonly error: unknown;
}

/** What `TxHooks.onStatement` learns about a statement. Never its SQL text nor its bindings. */
export interface TxStatementInfo {
  /** The attempt of the outermost transaction the statement runs in, 1-based. */
  readonly attempt: number;
  /** The isolation level asked for; undefined: the server's default. */
  readonly isolationLevel?: IsolationLevel;
  /** True when the transaction was begun READ ONLY. */
  readonly readOnly: boolean;
}

/** What `TxHooks.onEnd` learns about a finished outermost transaction. */
export interface TxEndInfo {
  /** How it ended (the `outcome` label of `db_transactions_total`). A vetoed retry is 'retry_exhausted'. */
  readonly outcome: TxOutcome;
  /** Attempts made, at least 1 (an attempt that could not get a connection or BEGIN counts). */
  readonly attempts: number;
  /** From the call to the end, retries and backoff included, ms. */
  readonly durationMs: number;
  /** The error the caller receives (translated), when the transaction did not commit. */
  readonly error?: unknown;
  /** True when a `beforeRetry` hook returned false and so ended the transaction. */
  readonly retryVetoed: boolean;
  /** The isolation level asked for; undefined: the server's default. */
  readonly isolationLevel?: IsolationLevel;
  /** True when the transaction was declared read-only. */
  readonly readOnly: boolean;
}

/**
 * Observers and policies plugged into a `TxManager` (`TxManagerOptions.hooks`,
 * `TxManager#addHooks`): the seam for a process-wide retry budget, per-transaction deadlines,
 * leak detection or failover awareness, without touching the manager.
 *
 * Contract, for every hook:
 * - Hooks are synchronous and run on the transaction's path: keep them cheap. A returned
 *   promise is not awaited (a rejection is caught and logged like a throw).
 * - A hook that throws never breaks the transaction: the error is caught, logged at warn the
 *   first time that hook method fails (later failures of the same method at debug, so a broken
 *   hook cannot flood the log), and the transaction goes on as if the hook were absent.
 * - Several hook objects run in the order they were added.
 * - They observe the transactions whose outcome the manager owns: `withTransaction`,
 *   `withReadOnlyTransaction`, `withTimeout` at the top level (or with `requiresNew`, which is
 *   a separate outermost transaction). A joined ('required') or 'nested' call is part of its
 *   outermost transaction (its statements count there; no `onEnd` of its own). `beginTx()`
 *   handles are not observed (no retry, no outcome: the metrics skip them too).
 * - Hooks added or removed while a transaction runs: `beforeRetry` and `onEnd` see the change
 *   at once; `onStatement` from the next attempt on (its hooks are read once per attempt).
 */
export interface TxHooks {
  /**
   * Called before each retry of an outermost transaction: after the manager has decided the
   * failure is retryable (transient, attempts left, the wait fits the deadline), before the
   * retry is logged, counted and waited for. Returning `false` vetoes it: the caller gets the
   * error exactly as on exhaustion (translated, e.g. `SerializationError`), the outcome is
   * 'retry_exhausted' (or 'commit_unknown' for an idempotent lost COMMIT), and the final log
   * line says `retryVetoed: true`. Any other return value (or a throw) lets the retry happen.
   * With several hooks, the first `false` wins and later hooks are not asked for that retry.
   * Not called when no retry would happen anyway (`retry: false`, the last attempt, a
   * permanent error, a deadline that the wait would pass).
   */
  beforeRetry?(info: TxRetryInfo): boolean | void;
  /**
   * Called for each statement the callback sends on the transaction (savepoints' included),
   * just before it is sent. Not for the statements the manager and knex send themselves
   * (BEGIN, SET TRANSACTION, the timeout settings, the xid lookup, COMMIT, ROLLBACK,
   * SAVEPOINT), nor for a statement refused because the transaction has ended. `info` carries
   * no SQL text and no bindings (they may hold secrets); the same `info` object is passed for
   * every statement of an attempt: do not keep or mutate it.
   */
  onStatement?(info: TxStatementInfo): void;
  /**
   * Called once per outermost transaction, after it committed or failed for good (retries
   * done, connection released or destroyed) and after its metrics were updated, just before
   * the caller's promise settles. Not called when `withTransaction` rejects its options
   * (`TxOptionsError`) before starting.
   */
  onEnd?(info: TxEndInfo): void;
}

type HookName = keyof TxHooks;

/** Errors a `beforeRetry` hook vetoed the retry of (marks, so no per-transaction state is needed). */
const vetoed = new WeakSet<object>();

/**
 * True when a `beforeRetry` hook vetoed retrying `err`; clears the mark, so an error object
 * thrown again later (a shared instance) is judged afresh.
 */
export function takeRetryVeto(err: unknown): boolean {
  return typeof err === 'object' && err !== null && vetoed.delete(err);
}

/**
 * The hooks of one manager: lists per method, rebuilt on add/remove (copy on write, so a hook
 * removing itself while hooks run is safe), and the exception isolation. With no hooks, the
 * manager's hot path only reads `hasStatement` / `hasEnd`.
 */
export class TxHookSet {
  readonly #logger: Logger;
  #all: readonly TxHooks[] = [];
  #retry: readonly TxHooks[] = [];
  #statement: readonly TxHooks[] = [];
  #end: readonly TxHooks[] = [];
  /** Hook methods that already failed once (their later failures log at debug). */
  readonly #failed = new WeakMap<TxHooks, Set<HookName>>();

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Adds `hooks`; returns its removal (idempotent). Adding the same object twice adds it once. */
  add(hooks: TxHooks): () => void {
    if (!this.#all.includes(hooks)) this.#rebuild([...this.#all, hooks]);
    return () => this.#rebuild(this.#all.filter((h) => h !== hooks));
  }

  get hasRetry(): boolean {
    return this.#retry.length > 0;
  }

  get hasStatement(): boolean {
    return this.#statement.length > 0;
  }

  get hasEnd(): boolean {
    return this.#end.length > 0;
  }

  /**
   * Asks every `beforeRetry` hook, in order, until one returns false; marks `info.error` as
   * vetoed then. Returns whether the retry may happen.
   */
  allowRetry(info: TxRetryInfo): boolean {
    for (const hooks of this.#retry) {
      if (this.#call(hooks, 'beforeRetry', info) === false) {
        if (typeof info.error === 'object' && info.error !== null) vetoed.add(info.error);
        return false;
      }
    }
    return true;
  }

  /**
   * The function a transaction calls before each statement of attempt `info.attempt`, or
   * undefined when no hook wants statements (the tracker then does nothing per statement).
   */
  statementListener(info: TxStatementInfo): (() => void) | undefined {
    const list = this.#statement;
    if (list.length === 0) return undefined;
    return () => {
      for (const hooks of list) this.#call(hooks, 'onStatement', info);
    };
  }

  end(info: TxEndInfo): void {
    for (const hooks of this.#end) this.#call(hooks, 'onEnd', info);
  }

  #rebuild(all: TxHooks[]): void {
    this.#all = all;
    this.#retry = all.filter((h) => typeof h.beforeRetry === 'function');
    this.#statement = all.filter((h) => typeof h.onStatement === 'function');
    this.#end = all.filter((h) => typeof h.onEnd === 'function');
  }

  #call<K extends HookName>(hooks: TxHooks, name: K, info: Parameters<NonNullable<TxHooks[K]>>[0]): unknown {
    try {
      const result: unknown = (hooks[name] as (i: typeof info) => unknown).call(hooks, info);
      if (isThenable(result)) result.then(undefined, (err: unknown) => this.#failure(hooks, name, err));
      return result;
    } catch (err) {
      this.#failure(hooks, name, err);
      return undefined;
    }
  }

  #failure(hooks: TxHooks, name: HookName, err: unknown): void {
    let failed = this.#failed.get(hooks);
    if (!failed) this.#failed.set(hooks, (failed = new Set()));
    const first = !failed.has(name);
    failed.add(name);
    const line = { hook: name, err };
    if (first)
      this.#logger.warn(line, 'transaction hook threw; ignored (later failures of this hook log at debug)');
    else this.#logger.debug(line, 'transaction hook threw again; ignored');
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
