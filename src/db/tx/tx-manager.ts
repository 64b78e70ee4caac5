import { performance } from 'node:perf_hooks';
import type { Knex } from 'knex';
import type { ForeignConnectionGuardMode, TransactionConfig } from '../../config/app-config.js';
import { DEFAULTS } from '../../config/defaults.js';
import type { Logger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { tracerOf, type TracingOptions } from '../../observability/tracing.js';
import type { Database, TxOptions } from '../database.js';
import { TxOptionsError } from '../errors/errors.js';
import { TransactionStateError } from '../errors/errors.js';
import { translateError, translateStatementError } from '../errors/translate-error.js';
import { guardTransaction } from './foreign-connection-guard.js';
import { handleOf } from './root-tx.js';
import { SavepointTx } from './savepoint-tx.js';
import {
  currentTransaction,
  isSandbox,
  isTransactionEnded,
  markSandbox,
  runInTransaction,
  transactionContext,
  type TxFn,
} from './tx-context.js';
import { TxHookSet, type TxHooks } from './tx-hooks.js';
import { withJoinedSettings } from './tx-settings.js';
import {
  DEFAULT_TX_DEFAULTS,
  joinConflicts,
  resolveTxOptions,
  type ResolvedTxOptions,
} from './tx-options.js';
import { RetryBudget } from './retry-budget.js';
import { TxRunner } from './tx-runner.js';
import { TxTracing } from './tx-tracing.js';
import { replaceTransactionEnds } from '../knex-internals.js';
import { sharedTxResources } from './tx-resources.js';
import type { ReplicaRouter } from '../replicas/replica-router.js';

/**
 * Optional collaborators and defaults of a TxManager. On a `PostgresDatabase`, the metrics,
 * tracing and replicas not given here are the database's own, so a second manager on it reads
 * replicas (seeing every commit acknowledged through the database), counts and traces as
 * `db.txManager` does. Its defaults, hooks and retry budget are its own.
 */
export interface TxManagerOptions {
  /**
   * Retry/timeout defaults and the foreign-connection guard mode (config `database.transactions`).
   *
   * `resolveLostCommit` (default true): a read-write transaction takes its xid with BEGIN, in
   * the same message, so that a COMMIT whose connection is lost is resolved with
   * `pg_xact_status` (committed -> success, aborted -> retry). `false` gives up the resolution:
   * a lost COMMIT then rejects with `CommitUnknownError` (re-run only with `idempotent: true`).
   * Read-only transactions never take one.
   *
   * `retryBudget` (`{ ratio, burst }`, config `database.transactions.retryBudget`, default
   * `{ ratio: 0.1, burst: 10 }` there) bounds retries across this manager's transactions (see
   * `RetryBudget`); absent here, the manager has no budget.
   */
  transactions?: Partial<TransactionConfig> & { resolveLostCommit?: boolean };
  /** Where counters go; the database's (a `PostgresDatabase`), else a private `Metrics`. */
  metrics?: Metrics;
  /** Bound on learning the outcome of a COMMIT whose connection was lost, ms. Default 5 s. */
  commitLookupTimeoutMs?: number;
  /** Hooks installed from the start (more with `addHooks`); see `TxHooks` for the contract. */
  hooks?: TxHooks;
  /**
   * OpenTelemetry spans: one `db.transaction` span per outermost transaction, retries
   * included, whose context the callback runs in (docs/observability.md). `true`: the global
   * tracer provider's; `{ tracer }`: that tracer. Default off: no OpenTelemetry call at all.
   */
  tracing?: boolean | TracingOptions;
  /**
   * Read replicas for `target: 'replica'`, with the commit positions that keep their reads
   * read-your-writes (a `PostgresDatabase` with `database.postgres.replicas` lends its own).
   * Without them `target: 'replica'` runs on the primary.
   */
  replicas?: ReplicaRouter;
}

/**
 * The transaction manager: runs callbacks in transactions with isolation level, read-only,
 * deferrable, a deadline that cancels on the server, retry of transient failures, savepoint
 * nesting and an ambient transaction (see docs/transactions.md).
 *
 * Defaults: 3 attempts, backoff 20 ms base / 1 s cap (full jitter), no timeout, guard 'warn'.
 * It relies only on `db.driver()` (knex) and works with any `Database` built on knex + pg.
 *
 * ```ts
 * const tx = db.txManager; // or new TxManager(db, logger): on a PostgresDatabase, the same resources
 * const id = await tx.withTransaction(async (trx) => {
 *   const [row] = await trx('accounts').insert({ owner: 'ada' }).returning('id');
 *   return row.id;
 * }, { isolationLevel: 'serializable', timeoutMs: 2_000 });
 * ```
 */
export class TxManager {
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #defaults: typeof DEFAULT_TX_DEFAULTS;
  readonly #guardMode: ForeignConnectionGuardMode;
  readonly #hooks: TxHookSet;
  /** `resolveTxOptions({})` under this manager's defaults: the common call validates nothing. */
  readonly #plain: ResolvedTxOptions;
  readonly #runner: TxRunner;
  readonly #replicas: ReplicaRouter | undefined;

  constructor(db: Database, logger: Logger, options: TxManagerOptions = {}) {
    // Built on a PostgresDatabase: its replicas, counters and tracing unless given here,
    // so a second manager never reads the primary for `target: 'replica'` or counts unscraped.
    const shared = sharedTxResources(db);
    this.#logger = logger.child({ component: 'tx-manager' });
    this.#metrics = options.metrics ?? shared?.metrics ?? new Metrics();
    const replicas = (this.#replicas = options.replicas ?? shared?.replicas);
    const t = options.transactions ?? {};
    this.#defaults = {
      maxAttempts: t.maxAttempts ?? DEFAULT_TX_DEFAULTS.maxAttempts,
      baseDelay: t.baseDelay ?? DEFAULT_TX_DEFAULTS.baseDelay,
      maxDelay: t.maxDelay ?? DEFAULT_TX_DEFAULTS.maxDelay,
      defaultTimeout: t.defaultTimeout ?? DEFAULT_TX_DEFAULTS.defaultTimeout,
    };
    this.#guardMode = t.foreignConnectionGuard ?? DEFAULTS.database.transactions.foreignConnectionGuard;
    this.#plain = resolveTxOptions({}, this.#defaults);
    this.#hooks = new TxHookSet(this.#logger);
    if (options.hooks) this.#hooks.add(options.hooks);
    // Built in as a hook (after the given ones, so a veto of theirs costs no token): the retry loop stays as it is.
    if (t.retryBudget)
      this.#hooks.add(new RetryBudget(t.retryBudget, { metrics: this.#metrics, logger: this.#logger }));
    const tracer = tracerOf(options.tracing ?? shared?.tracing);
    this.#runner = new TxRunner({
      db,
      logger: this.#logger,
      metrics: this.#metrics,
      hooks: this.#hooks,
      guardMode: this.#guardMode,
      resolveLostCommit: t.resolveLostCommit ?? DEFAULTS.database.transactions.resolveLostCommit,
      // Across a failover only with the xid read before COMMIT (tx-origin.ts); several hosts imply it.
      xidAtBegin: !(
        (t.resolveAcrossFailover ?? DEFAULTS.database.transactions.resolveAcrossFailover) ||
        (shared?.severalHosts ?? false)
      ),
      lookupTimeoutMs: options.commitLookupTimeoutMs,
      plain: this.#plain,
      tracing: tracer && new TxTracing(tracer, () => db.driver()),
      replicas,
    });
  }

  /**
   * The WAL position of the last commit acknowledged through this manager's replicas (by this
   * manager or another one sharing them, such as `db.txManager`), as a token another process
   * can pass as `{ after: token }` so that its replica read sees that commit. Recorded only with
   * replicas configured (undefined otherwise, and before the first read-write commit).
   */
  lastCommitToken(): string | undefined {
    return this.#replicas?.lastCommitToken();
  }

  /**
   * Adds hooks (a retry budget, a statement counter...) to the transactions this manager runs
   * from now on; see `TxHooks` for when each is called and what a throwing hook does.
   * Returns a function that removes them again (idempotent). Adding the same object twice
   * adds it once. For a `PostgresDatabase`, `db.txManager.addHooks(...)` reaches the manager
   * behind `db.withTransaction`.
   *
   * ```ts
   * // At most one retry per second across the process; beyond it, callers get the error.
   * let next = 0;
   * const remove = db.txManager.addHooks({
   *   beforeRetry: () => {
   *     const now = Date.now();
   *     if (now < next) return false;
   *     next = now + 1_000;
   *   },
   * });
   * ```
   */
  addHooks(hooks: TxHooks): () => void {
    return this.#hooks.add(hooks);
  }

  /** The counters this manager updates (started, ended by outcome, retries by reason, errors). */
  get metrics(): Metrics {
    return this.#metrics;
  }

  /**
   * Runs `fn` in a transaction and commits when it resolves; rolls back and rethrows when it
   * throws. The callback may run more than once: transient failures (40001, 40P01, a
   * connection lost before COMMIT, a lost COMMIT the server says aborted, a failover) re-run
   * it with backoff, at the outermost transaction only.
   *
   * Failover (pg#2650): a 25006 in a transaction not declared `readOnly` (the session is
   * read-only although a read-write transaction was asked for: a standby, or a session older
   * than the failover), or a 57P03 (the server refuses connections now). The connection is
   * destroyed, the pool's idle connections are evicted, and the retry opens a new connection,
   * which resolves the host name again. Retries count with reason 'failover'. When every
   * attempt met it: `ReadOnlyTransactionError` (25006) or `ConnectionError` (57P03), with the
   * driver error as `cause`. In a `readOnly` transaction a 25006 is the caller's write and
   * rejects at once with `ReadOnlyTransactionError`. `propagation` decides what happens inside an
   * ambient transaction: 'required' joins it, 'nested' opens a savepoint, 'requiresNew' runs
   * on another connection. Inside `fn`, `current()` returns `trx`.
   *
   * A callback returning a non-promise is fine (its value is committed). A knex builder that is
   * never awaited never runs (builders are lazy); a query started but not awaited is waited
   * for before COMMIT, and if it failed, COMMIT answers ROLLBACK and this rejects.
   *
   * @throws TxOptionsError before any connection is taken; the callback's own error unchanged
   *   (driver errors translated: objection's constraint classes for 23xxx,
   *   `SerializationError`, `ReadOnlyTransactionError`, `ConnectionError`...);
   *   `ReadOnlyTransactionError` after every attempt met a read-only session (failover);
   *   `TransactionTimeoutError`; `CommitUnknownError`; `TransactionAbortedError` when COMMIT
   *   answered ROLLBACK; `TransactionStateError` when joining with incompatible options.
   */
  withTransaction<T>(fn: TxFn<T>, opts?: TxOptions): Promise<T> {
    let o: ResolvedTxOptions;
    try {
      o = opts === undefined || isEmpty(opts) ? this.#plain : resolveTxOptions(opts, this.#defaults);
    } catch (err) {
      // resolveTxOptions throws only TxOptionsError.
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const ambient = transactionContext.getStore();
    // Not async itself: the common top-level call adds no promise of its own.
    if (!ambient) return this.#runner.run(fn, o);
    // Inside a rollback sandbox (tests) everything is a savepoint of it, whatever was asked.
    if (isSandbox(ambient)) return this.#join(fn, sandboxed(o), ambient);
    if (o.propagation === 'requiresNew') return this.#runner.run(fn, o);
    return this.#join(fn, o, ambient);
  }

  /**
   * `withTransaction` with `readOnly: true`: a write rejects with `ReadOnlyTransactionError`.
   *
   * `target: 'replica'` runs it on a replica of `database.postgres.replicas` that has replayed
   * every commit this manager acknowledged before the call (and `after`, a token from
   * `lastCommitToken()`), waiting up to `replicaWaitTimeout` for one; otherwise on the primary
   * (never an error). Inside an ambient transaction it joins that transaction as usual.
   *
   * ```ts
   * await db.withTransaction((trx) => trx('orders').insert(order));
   * // Sees the insert above: waits for a replica to replay it, or reads the primary.
   * const rows = await db.txManager.withReadOnlyTransaction((trx) => trx('orders').select(), { target: 'replica' });
   * ```
   * @throws TxOptionsError when `opts.readOnly` is false.
   */
  withReadOnlyTransaction<T>(fn: TxFn<T>, opts: TxOptions = {}): Promise<T> {
    if (opts.readOnly === false)
      return Promise.reject(new TxOptionsError('withReadOnlyTransaction() cannot take readOnly: false.'));
    return this.withTransaction(fn, { ...opts, readOnly: true });
  }

  /**
   * `withTransaction` bounded by `timeoutMs` (acquire, statements, COMMIT and retries): at the
   * deadline the running statement is cancelled on the server, the transaction rolls back, the
   * connection returns to the pool, and this rejects with `TransactionTimeoutError` within
   * about timeoutMs + 150 ms; the handle then refuses every statement.
   */
  withTimeout<T>(timeoutMs: number, fn: TxFn<T>, opts: TxOptions = {}): Promise<T> {
    return this.withTransaction(fn, { ...opts, timeoutMs });
  }

  /** The ambient transaction of this async call chain, if any and not yet ended. */
  current(): Knex.Transaction | undefined {
    return currentTransaction();
  }

  /**
   * Explicit style (database/sql's BeginTx): a new transaction on its own connection (or, with
   * `propagation: 'nested'` inside an ambient transaction, a savepoint). The caller must call
   * `commit()` or `rollback()`. `commit()` rejects when COMMIT fails (stock knex resolves
   * undefined there) with the same translated errors as `withTransaction`. No retry, no ambient
   * context. With `timeoutMs`, the transaction rolls back at the deadline by itself.
   * @throws TxOptionsError for invalid options.
   */
  async beginTx(opts: TxOptions = {}): Promise<Knex.Transaction> {
    const o = resolveTxOptions(opts, this.#defaults);
    const ambient = currentTransaction();
    const parent = ambient && handleOf(ambient);
    if (o.propagation === 'nested' && parent && o.settings.length > 0)
      throw new TxOptionsError(
        'settings cannot be given to a nested beginTx (a savepoint has no end that restores them): use withTransaction, or set them on the outer transaction.',
      );
    const handle =
      (o.propagation === 'nested' || (ambient !== undefined && isSandbox(ambient))) && parent
        ? await SavepointTx.begin(parent)
        : await this.#runner.begin(o, performance.now());
    const trx = handle.trx;
    let ending: Promise<void> | undefined;
    const commit = (): Promise<void> =>
      (ending ??= handle.commit().catch((err: unknown) => {
        throw translateError(err, { declaredReadOnly: o.readOnly });
      }));
    // After commit() (failed or not) there is nothing left to roll back: a no-op, so the usual
    // `catch { await trx.rollback() }` does not throw the commit error a second time.
    const rollback = (): Promise<void> => (ending ? ending.catch(() => {}) : (ending = handle.rollback()));
    replaceTransactionEnds(trx, { commit, rollback });
    return trx;
  }
  /**
   * `withTransaction` inside an ambient transaction (propagation 'required' or 'nested'):
   * 'required' runs `fn` on the ambient transaction itself, 'nested' in a savepoint of it whose
   * failure rolls back to the savepoint only. Options that the call sets explicitly (isolation
   * level, read-only, deferrable, timeout) must be compatible with what the ambient transaction
   * guarantees. No retry here: retry happens at the outermost transaction only.
   * @throws TransactionStateError when the ambient transaction has ended or the options conflict
   *   with it; otherwise the callback's error unchanged (after the savepoint rolled back).
   */
  async #join<T>(fn: TxFn<T>, o: ResolvedTxOptions, ambient: Knex.Transaction): Promise<T> {
    if (isTransactionEnded(ambient))
      throw new TransactionStateError(
        'The ambient transaction has already ended; await the work inside its callback.',
      );
    const parent = handleOf(ambient);
    if (parent && JOIN_CHECKED.some((k) => o.explicit.has(k))) {
      const conflicts = joinConflicts(await parent.root.traits(), o, performance.now());
      if (conflicts.length > 0)
        throw new TransactionStateError(`Cannot join the ambient transaction: ${conflicts.join('; ')}.`);
    }
    const settings = o.settings;
    const run = (trx: Knex.Transaction): Promise<T> =>
      settings.length === 0
        ? runInTransaction(trx, fn)
        : withJoinedSettings(trx, settings, () => runInTransaction(trx, fn));
    if (o.propagation === 'required') return settings.length === 0 ? fn(ambient) : run(ambient);
    // A transaction TxManager did not start (plain knex): knex's own savepoint.
    if (!parent) return ambient.transaction(run);
    const sp = await SavepointTx.begin(parent);
    guardTransaction(sp.trx, this.#runner.guard);
    if (isSandbox(ambient)) markSandbox(sp.trx);
    let result: T;
    try {
      result = await run(sp.trx);
    } catch (err) {
      await sp.rollback(err);
      // The caller of this withTransaction gets the typed error a top-level one would give
      // (a 23505 as UniqueViolationError), not the driver's.
      throw translateStatementError(err);
    }
    await sp.commit();
    return result;
  }
}

/** The options a joining call may set only when the ambient transaction already guarantees them. */
const JOIN_CHECKED: ReadonlyArray<keyof TxOptions> = [
  'isolationLevel',
  'readOnly',
  'deferrable',
  'timeoutMs',
];

/**
 * The options of a call inside a rollback sandbox: a savepoint, whatever the propagation, and
 * nothing checked against the sandbox (its isolation level, read-only mode and deadline are the
 * test's; docs/testing.md says what a savepoint cannot reproduce).
 */
function sandboxed(o: ResolvedTxOptions): ResolvedTxOptions {
  return { ...o, propagation: 'nested', explicit: new Set() };
}

/** True when `opts` sets nothing (no own key with a value): the manager's defaults apply as they are. */
function isEmpty(opts: TxOptions): boolean {
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) return opts === null;
  for (const key in opts) if ((opts as Record<string, unknown>)[key] !== undefined) return false;
  return true;
}
