import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { handleWhen, retry, type IBackoff, type IBackoffFactory } from 'cockatiel';
import type { Knex } from 'knex';
import type { ForeignConnectionGuardMode } from '../../config/app-config.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics, RetryReason, TxOutcome } from '../../observability/metrics.js';
import { fullJitterDelay } from '../backoff.js';
import type { Database } from '../database.js';
import { classifyError, classifyTxError, type ErrorClassification } from '../errors/classify-error.js';
import {
  CommitAbortedError,
  CommitUnknownError,
  TransactionStateError,
  TransactionTimeoutError,
} from '../errors/errors.js';
import { SQLSTATE } from '../errors/sql-states.js';
import { translateError } from '../errors/translate-error.js';
import { acquirePooled, replaceTransactionEnds } from '../knex-internals.js';
import type { ReplicaRouter } from '../replicas/replica-router.js';
import {
  acquireOwn,
  guardTransaction,
  installForeignConnectionGuard,
  type TransactionGuard,
} from './foreign-connection-guard.js';
import { RootTx, type RootTxDeps, type RootTxSettings } from './root-tx.js';
import { runInTransaction, transactionContext, type TxFn } from './tx-context.js';
import { takeRetryVeto, type TxHookSet } from './tx-hooks.js';
import type { ResolvedRetry, ResolvedTxOptions } from './tx-options.js';
import type { TxSpan, TxTracing } from './tx-tracing.js';

/** What a `TxRunner` works with (one manager's, fixed at construction). */
export interface TxRunnerOptions {
  db: Database;
  logger: Logger;
  metrics: Metrics;
  hooks: TxHookSet;
  guardMode: ForeignConnectionGuardMode;
  resolveLostCommit: boolean;
  /** Take the xid with BEGIN (one round trip fewer) rather than before COMMIT; see `RootTxDeps.xidAtBegin`. */
  xidAtBegin: boolean;
  /** Bound on learning a lost COMMIT's outcome, ms; undefined: the default (5 s). */
  lookupTimeoutMs: number | undefined;
  /** The manager's resolved default options: their retry rules are built once and shared. */
  plain: ResolvedTxOptions;
  /** The transactions' spans; undefined (tracing off): no OpenTelemetry call at all. */
  tracing?: TxTracing | undefined;
  /**
   * Read replicas (`target: 'replica'`) and the commit positions that keep their reads
   * read-your-writes; undefined (no replicas configured): no position is recorded at all.
   */
  replicas?: ReplicaRouter | undefined;
}

/** After the deadline, cancel + ROLLBACK get this long before the caller is told, ms. */
const TIMEOUT_GRACE_MS = 150;

/** A withTransaction callback's commit()/rollback(): the manager ends the transaction itself. */
const refuseManualEnd = (): Promise<never> =>
  Promise.reject(
    new TransactionStateError(
      'withTransaction() commits and rolls back by itself: return to commit, throw to roll back.',
    ),
  );

/**
 * Runs the outermost transactions of one TxManager (top level, or `requiresNew`): begins each
 * attempt as a `RootTx`, runs the callback as the ambient transaction (raced with the
 * deadline when there is one), commits or rolls back, and retries transient failures
 * (never past the deadline, a lost COMMIT only when `idempotent`, unless a `beforeRetry`
 * hook vetoes). Retry happens here only: statement-level retry inside a transaction fails
 * with "current transaction is aborted" (sequelize#12608). Each retry is one warn line and
 * one counted retry (prisma#25525: only exhaustion logs at error); each outcome is counted
 * and timed, and the `onEnd` hooks hear it. Built once per manager: per transaction it
 * allocates only the attempt itself.
 */
export class TxRunner {
  readonly #opts: TxRunnerOptions;
  #plainRetry: RetryRunOptions | undefined;
  /** What every top-level transaction on `#guarded` shares (built once per knex instance). */
  #deps: RootTxDeps | undefined;
  #guarded: Knex | undefined;
  /** The same for each replica's knex. */
  readonly #replicaDeps = new Map<Knex, RootTxDeps>();
  readonly #guard: TransactionGuard;

  constructor(opts: TxRunnerOptions) {
    this.#opts = opts;
    this.#guard = { mode: opts.guardMode, logger: opts.logger };
  }

  /** How the foreign-connection guard treats this manager's transactions. */
  get guard(): TransactionGuard {
    return this.#guard;
  }

  /**
   * Runs `fn` as an outermost transaction: attempts with backoff while the failure is
   * transient (and the hooks and the deadline allow), then counts and logs the outcome, calls
   * the `onEnd` hooks and settles.
   * @throws the last attempt's error, translated (`translateError`).
   */
  run<T>(fn: TxFn<T>, o: ResolvedTxOptions): Promise<T> {
    const tracing = this.#opts.tracing;
    if (tracing === undefined) return this.#run(fn, o, undefined);
    return tracing.run(o, (span) => this.#run(fn, o, span));
  }

  async #run<T>(fn: TxFn<T>, o: ResolvedTxOptions, span: TxSpan | undefined): Promise<T> {
    const started = performance.now();
    let attempts = 1;
    try {
      let result: T;
      try {
        // The first attempt runs bare: the retry machinery is built only once one has failed.
        result = await this.#attempt(fn, o, started, 1);
      } catch (first) {
        if (o.retry.maxAttempts <= 1) throw first;
        const deadline = o.timeoutMs === undefined ? undefined : started + o.timeoutMs;
        const rules = this.#retryRules(o, deadline);
        result = await retryAfterFailure(
          first,
          (attempt) => {
            attempts = attempt;
            return this.#attempt(fn, o, started, attempt);
          },
          span === undefined ? rules : span.retrying(rules),
        );
      }
      this.#ended('committed', o, started, attempts, undefined, false, span);
      return result;
    } catch (caught) {
      const err = pastDeadline(caught, o, started);
      const verdict = classifyTxError(err, { declaredReadOnly: o.readOnly });
      const outcome = outcomeOf(err, o, verdict);
      const retryVetoed = takeRetryVeto(err);
      this.#opts.metrics.errors.inc({ class: verdict.kind });
      if (outcome === 'retry_exhausted' || outcome === 'commit_unknown') {
        const { kind: reason, sqlState } = verdict;
        const isolation = o.isolationLevel ?? 'default';
        if (retryVetoed)
          this.#opts.logger.error(
            { attempts, reason, sqlState, isolation, retryVetoed },
            'transaction failed; a beforeRetry hook vetoed its retry',
          );
        else
          this.#opts.logger.error(
            { attempts, reason, sqlState, isolation },
            'transaction failed after every attempt',
          );
      }
      const final = translateError(err, { attempts, declaredReadOnly: o.readOnly });
      this.#ended(outcome, o, started, attempts, final, retryVetoed, span);
      throw final;
    }
  }

  /**
   * Begins a top-level transaction (an attempt of `run`, or `beginTx`); `onStatement` from
   * the hooks. Counted as started and watched by the foreign-connection guard.
   * @throws what `RootTx.begin` throws (TransactionTimeoutError past the deadline, the
   *   acquire or BEGIN error otherwise); nothing is counted then.
   */
  begin(o: ResolvedTxOptions, started: number, onStatement?: () => void): Promise<RootTx> {
    const settings: RootTxSettings = {
      isolationLevel: o.isolationLevel,
      readOnly: o.readOnly,
      deferrable: o.deferrable,
      timeoutMs: o.timeoutMs,
      deadline: o.timeoutMs === undefined ? undefined : started + o.timeoutMs,
      onStatement,
      settings: o.settings,
    };
    const replicas = this.#opts.replicas;
    if (o.target === 'replica' && replicas) return this.#beginOnReplica(replicas, o, settings);
    return RootTx.begin(this.#depsFor(this.#opts.db.driver()), settings);
  }

  /**
   * A replica read: on a replica that has replayed what the read must see (the manager's last
   * acknowledged commit, and `after`), else on the primary. A replica whose checkout or BEGIN
   * fails is marked down (or promoted) and the read begins on the primary instead, in the same
   * attempt: nothing has run yet, so nothing can be lost.
   */
  async #beginOnReplica(
    router: ReplicaRouter,
    o: ResolvedTxOptions,
    settings: RootTxSettings,
  ): Promise<RootTx> {
    const required = await router.required(o.after);
    let route = required === 'primary' ? router.fallBack() : await router.route(required, settings.deadline);
    if (route.replica) {
      try {
        const tx = await RootTx.begin(this.#depsFor(route.knex), settings);
        router.begun(route);
        return tx;
      } catch (err) {
        if (err instanceof TransactionTimeoutError) throw err;
        router.failed(route, err);
        route = router.fallBack();
      }
    }
    const tx = await RootTx.begin(this.#depsFor(route.knex), settings);
    router.begun(route);
    return tx;
  }

  /**
   * One attempt: begin, the callback (its own `commit()`/`rollback()` refused), then COMMIT,
   * or ROLLBACK when it throws.
   * @throws TransactionTimeoutError at the deadline (cancel + ROLLBACK get 150 ms of grace
   *   first), also for a server-side 57014 just before it; `ConnectionError` when the
   *   connection broke before COMMIT, whatever the callback threw; otherwise the BEGIN,
   *   callback or COMMIT error unchanged.
   */
  async #attempt<T>(fn: TxFn<T>, o: ResolvedTxOptions, started: number, attempt: number): Promise<T> {
    const hooks = this.#opts.hooks;
    const onStatement = hooks.hasStatement
      ? hooks.statementListener({ attempt, isolationLevel: o.isolationLevel, readOnly: o.readOnly })
      : undefined;
    const tx = await this.begin(o, started, onStatement);
    const trx = tx.trx;
    replaceTransactionEnds(trx, { commit: refuseManualEnd, rollback: refuseManualEnd });
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
      // Read before the rollback, which releases the connection.
      const lost = tx.lostConnectionCaused(err);
      await tx.rollback(err);
      // knex marks a transaction complete when its connection dies between two statements,
      // and the callback's next statement then throws "Transaction query already complete":
      // the loss, not the message, is what happened, and it is safe to retry.
      throw lost ? translateError(err, { connectionLost: true }) : err;
    }
    await tx.commit();
    return result;
  }

  #depsFor(knex: Knex): RootTxDeps {
    if (this.#guarded === knex && this.#deps) return this.#deps;
    const primary = knex === this.#opts.db.driver();
    if (!primary) {
      const known = this.#replicaDeps.get(knex);
      if (known) return known;
    }
    installForeignConnectionGuard(knex);
    const deps = this.#buildDeps(knex, primary);
    if (primary) {
      this.#guarded = knex;
      this.#deps = deps;
    } else this.#replicaDeps.set(knex, deps);
    return deps;
  }

  #buildDeps(knex: Knex, primary: boolean): RootTxDeps {
    const acquire = (): Promise<unknown> => acquirePooled(knex);
    const { logger, resolveLostCommit, xidAtBegin, lookupTimeoutMs, tracing, replicas } = this.#opts;
    return {
      knex,
      logger,
      // Outside any ambient transaction the guard lets every checkout through: no need to
      // enter its AsyncLocalStorage (requiresNew and beginTx inside one still do).
      acquire: () => (transactionContext.getStore() === undefined ? acquire() : acquireOwn(acquire)),
      resolveLostCommit,
      xidAtBegin,
      commitLookupTimeoutMs: lookupTimeoutMs,
      onCommitLookup: (outcome) => {
        this.#opts.metrics.commitLookups.inc({ outcome });
        tracing?.commitLookedUp(outcome);
      },
      onBegun: (tx) => {
        this.#opts.metrics.txStarted.inc({ isolation: tx.isolationLevel ?? 'default' });
        guardTransaction(tx.trx, this.#guard);
      },
      // Only with replicas: a commit's position costs one round trip after COMMIT.
      afterCommit: primary && replicas ? (connection) => replicas.committed(connection) : undefined,
    };
  }

  /** The retry rules of one transaction; those of the default options are built once and shared. */
  #retryRules(o: ResolvedTxOptions, deadline: number | undefined): RetryRunOptions {
    if (o === this.#opts.plain && deadline === undefined)
      return (this.#plainRetry ??= this.#buildRetryRules(o, undefined));
    return this.#buildRetryRules(o, deadline);
  }

  #buildRetryRules(o: ResolvedTxOptions, deadline: number | undefined): RetryRunOptions {
    const { hooks, metrics, logger } = this.#opts;
    const isolation = o.isolationLevel ?? 'default';
    const ctx = { declaredReadOnly: o.readOnly };
    return {
      ...o.retry,
      shouldRetry: (err, delayMs, attempt) => {
        if (deadline !== undefined && performance.now() + delayMs >= deadline) return false;
        const verdict = classifyTxError(err, ctx);
        if (!(err instanceof CommitUnknownError ? o.idempotent : verdict.transient)) return false;
        if (!hooks.hasRetry) return true;
        const reason = retryReason(err, verdict);
        return hooks.allowRetry({ attempt, delayMs, reason, sqlState: verdict.sqlState, error: err });
      },
      onRetry: ({ attempt, delayMs, error }) => {
        const verdict = classifyTxError(error, ctx);
        const reason = retryReason(error, verdict);
        metrics.txRetries.inc({ reason });
        const { sqlState } = verdict;
        logger.warn(
          { attempt, delayMs, reason, sqlState, isolation },
          'transaction failed transiently; retrying',
        );
      },
    };
  }

  #ended(
    outcome: TxOutcome,
    o: ResolvedTxOptions,
    started: number,
    attempts: number,
    error: unknown,
    retryVetoed: boolean,
    span: TxSpan | undefined,
  ): void {
    const { metrics, hooks } = this.#opts;
    const durationMs = performance.now() - started;
    metrics.txEnded.inc({ outcome, isolation: o.isolationLevel ?? 'default' });
    metrics.txDuration.observe({ outcome }, durationMs / 1000);
    span?.end(outcome, attempts, error, retryVetoed);
    if (!hooks.hasEnd) return;
    hooks.end({
      outcome,
      attempts,
      durationMs,
      ...(error === undefined ? {} : { error }),
      retryVetoed,
      isolationLevel: o.isolationLevel,
      readOnly: o.readOnly,
    });
  }
}

/** Why a transaction is retried (the `reason` label of `db_transaction_retries_total`). */
export function retryReason(err: unknown, { kind }: ErrorClassification): RetryReason {
  if (err instanceof CommitAbortedError) return 'commit_aborted';
  if (err instanceof CommitUnknownError) return 'commit_unknown';
  return kind === 'serialization' || kind === 'deadlock' || kind === 'failover' ? kind : 'connection';
}

function outcomeOf(err: unknown, o: ResolvedTxOptions, verdict: ErrorClassification): TxOutcome {
  if (err instanceof TransactionTimeoutError) return 'timeout';
  if (err instanceof CommitUnknownError) return 'commit_unknown';
  if (o.retry.maxAttempts > 1 && verdict.transient) return 'retry_exhausted';
  return 'rolled_back';
}

/**
 * What a caller hears once its deadline has passed: a TransactionTimeoutError (the failure as
 * its cause), whatever ended the last attempt, so a caller past its deadline is told of the
 * deadline (a lost COMMIT's lookup or a retry can end after it). Except CommitUnknownError:
 * the transaction may have committed, and a timeout would say it was rolled back.
 */
function pastDeadline(err: unknown, o: ResolvedTxOptions, started: number): unknown {
  if (o.timeoutMs === undefined || performance.now() < started + o.timeoutMs) return err;
  if (err instanceof TransactionTimeoutError || err instanceof CommitUnknownError) return err;
  return new TransactionTimeoutError(o.timeoutMs, { cause: err });
}

/** A server-side 57014 that arrived just before our own timer: it is our deadline all the same. */
function isOwnDeadline(err: unknown, o: ResolvedTxOptions, started: number): boolean {
  return (
    o.timeoutMs !== undefined &&
    classifyError(err).sqlState === SQLSTATE.queryCanceled &&
    performance.now() >= started + o.timeoutMs - 50
  );
}

/** How `runWithRetry` runs one callback. */
export interface RetryRunOptions extends ResolvedRetry {
  /**
   * Whether `err` may be retried after waiting `delayMs` (kind, idempotency, deadline, the
   * `beforeRetry` hooks). Called once per failure that has an attempt left, with the attempt
   * that failed (1-based); the manager's rules live there, the schedule lives here.
   */
  shouldRetry(err: unknown, delayMs: number, attempt: number): boolean;
  /** Called before each wait: the attempt that failed (1-based), the wait, the error. */
  onRetry?(info: { attempt: number; delayMs: number; error: unknown }): void;
  /** Uniform source in [0, 1) for the jitter; injectable for tests. Default Math.random. */
  random?: () => number;
}

/** A backoff whose next duration was already drawn by the retry predicate. */
class DrawnBackoff implements IBackoff<unknown> {
  readonly #read: () => number;
  constructor(read: () => number) {
    this.#read = read;
  }
  get duration(): number {
    return this.#read();
  }
  next(): IBackoff<unknown> {
    return this;
  }
}

/**
 * Runs `fn` and re-runs it on failures that `shouldRetry` accepts, at most `maxAttempts`
 * times in all, waiting between attempts with exponential backoff and full jitter: before
 * retry n (0-based) a uniform draw from [0, min(maxDelayMs, baseDelayMs * 2^n)) ms
 * (`fullJitterDelay`). Built on cockatiel's retry policy; the delay is drawn in the predicate
 * so that `shouldRetry` can refuse a wait that would pass the transaction's deadline.
 *
 * `fn` receives the attempt number, 1-based. The last error is rethrown unchanged.
 */
export async function runWithRetry<T>(
  fn: (attempt: number) => Promise<T>,
  opts: RetryRunOptions,
): Promise<T> {
  if (opts.maxAttempts <= 1) return fn(1);
  try {
    return await fn(1);
  } catch (err) {
    return retryAfterFailure(err, fn, opts);
  }
}

/**
 * The rest of `runWithRetry` once attempt 1 failed with `first`: decides on it, waits, then
 * runs attempts 2..maxAttempts under cockatiel's retry policy. Split off so that a transaction
 * that succeeds at once builds no policy, backoff or event listener.
 */
export async function retryAfterFailure<T>(
  first: unknown,
  fn: (attempt: number) => Promise<T>,
  opts: RetryRunOptions,
): Promise<T> {
  const random = opts.random ?? Math.random;
  let retries = 0;
  let drawn = 0;
  const decide = (err: unknown): boolean => {
    drawn = fullJitterDelay(retries, { baseMs: opts.baseDelayMs, maxMs: opts.maxDelayMs }, random);
    const again = retries + 1 < opts.maxAttempts && opts.shouldRetry(err, drawn, retries + 1);
    if (again) retries++;
    return again;
  };
  if (!decide(first)) throw first;
  opts.onRetry?.({ attempt: 1, delayMs: drawn, error: first });
  await delay(drawn);
  if (opts.maxAttempts <= 2) return fn(2);
  const backoff: IBackoffFactory<unknown> = { next: () => new DrawnBackoff(() => drawn) };
  const policy = retry(handleWhen(decide), { maxAttempts: opts.maxAttempts - 2, backoff });
  policy.onRetry((event) => {
    // cockatiel counts its own retries; attempt 1 was run before the policy.
    if ('error' in event)
      opts.onRetry?.({ attempt: event.attempt + 1, delayMs: event.delay, error: event.error });
  });
  return policy.execute(({ attempt }) => fn(attempt + 2));
}
