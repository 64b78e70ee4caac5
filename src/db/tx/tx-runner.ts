import { performance } from 'node:perf_hooks';
import type { Logger } from '../../observability/logger.js';
import type { Metrics, RetryReason, TxOutcome } from '../../observability/metrics.js';
import { classifyTxError, type ErrorClassification } from '../errors/classify-error.js';
import { CommitUnknownError, TransactionTimeoutError } from '../errors/errors.js';
import { runWithRetry, type RetryRunOptions } from './retry-policy.js';
import { translateError } from '../errors/translate-error.js';
import { runAttempt } from './tx-attempt.js';
import type { TxFn } from './tx-context.js';
import { failoverError } from './tx-failover.js';
import { takeRetryVeto, type TxHookSet } from './tx-hooks.js';
import { CommitAbortedError } from './tx-lost-commit.js';
import type { ResolvedTxOptions } from './tx-options.js';
import type { TxStarter } from './tx-starter.js';

/** What a `TxRunner` works with (one manager's, fixed at construction). */
export interface TxRunnerOptions {
  starter: TxStarter;
  hooks: TxHookSet;
  metrics: Metrics;
  logger: Logger;
  /** The manager's resolved default options: their retry rules are built once and shared. */
  plain: ResolvedTxOptions;
}

/**
 * Runs the outermost transactions of one TxManager (top level, or `requiresNew`): the retry
 * loop around `runAttempt`, which failures are retried (transient ones, a lost COMMIT only
 * when `idempotent`, never past the deadline, unless a `beforeRetry` hook vetoes), and the
 * accounting of each transaction: one warn line and one counted retry per retry, the
 * outcome's counters and duration, one error line when retries ran out, the `onEnd` hooks.
 * Built once per manager; nothing here is allocated per transaction beyond the retry rules of
 * non-default options.
 */
export class TxRunner {
  readonly #starter: TxStarter;
  readonly #hooks: TxHookSet;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #plain: ResolvedTxOptions;
  #plainRetry: RetryRunOptions | undefined;

  constructor({ starter, hooks, metrics, logger, plain }: TxRunnerOptions) {
    this.#starter = starter;
    this.#hooks = hooks;
    this.#metrics = metrics;
    this.#logger = logger;
    this.#plain = plain;
  }

  /**
   * Runs `fn` as an outermost transaction: attempts with backoff while the failure is
   * transient (and the hooks and the deadline allow), then counts and logs the outcome, calls
   * the `onEnd` hooks and settles.
   * @throws the last attempt's error, translated (`translateError`, or `failoverError` for a
   *   failover that outlasted the retries).
   */
  async run<T>(fn: TxFn<T>, o: ResolvedTxOptions): Promise<T> {
    const started = performance.now();
    const deadline = o.timeoutMs === undefined ? undefined : started + o.timeoutMs;
    const isolation = o.isolationLevel ?? 'default';
    let attempts = 0;
    try {
      const result = await runWithRetry(
        (attempt) => {
          attempts = attempt;
          return runAttempt(this.#starter, this.#hooks, fn, o, started, attempt);
        },
        this.#retryRules(o, deadline),
      );
      this.#ended('committed', isolation, started);
      if (this.#hooks.hasEnd) this.#endHooks('committed', attempts, o, started, undefined, false);
      return result;
    } catch (err) {
      const verdict = classifyTxError(err, { declaredReadOnly: o.readOnly });
      const outcome = outcomeOf(err, o, verdict);
      const retryVetoed = takeRetryVeto(err);
      this.#ended(outcome, isolation, started);
      this.#metrics.errors.inc({ class: verdict.kind });
      if (outcome === 'retry_exhausted' || outcome === 'commit_unknown') {
        const { kind, sqlState } = verdict;
        if (retryVetoed)
          this.#logger.error(
            { attempts, reason: kind, sqlState, isolation, retryVetoed },
            'transaction failed; a beforeRetry hook vetoed its retry',
          );
        else
          this.#logger.error(
            { attempts, reason: kind, sqlState, isolation },
            'transaction failed after every attempt',
          );
      }
      const final =
        verdict.kind === 'failover'
          ? failoverError(err, verdict, attempts)
          : translateError(err, { attempts });
      if (this.#hooks.hasEnd) this.#endHooks(outcome, attempts, o, started, final, retryVetoed);
      throw final;
    }
  }

  #endHooks(
    outcome: TxOutcome,
    attempts: number,
    o: ResolvedTxOptions,
    started: number,
    error: unknown,
    retryVetoed: boolean,
  ): void {
    this.#hooks.end({
      outcome,
      attempts,
      durationMs: performance.now() - started,
      ...(error === undefined ? {} : { error }),
      retryVetoed,
      isolationLevel: o.isolationLevel,
      readOnly: o.readOnly,
    });
  }

  /** The retry rules of one transaction; those of the default options are built once and shared. */
  #retryRules(o: ResolvedTxOptions, deadline: number | undefined): RetryRunOptions {
    if (o === this.#plain && deadline === undefined)
      return (this.#plainRetry ??= this.#buildRetryRules(o, undefined));
    return this.#buildRetryRules(o, deadline);
  }

  #buildRetryRules(o: ResolvedTxOptions, deadline: number | undefined): RetryRunOptions {
    const isolation = o.isolationLevel ?? 'default';
    const ctx = { declaredReadOnly: o.readOnly };
    return {
      ...o.retry,
      shouldRetry: (err, delayMs, attempt) => {
        if (deadline !== undefined && performance.now() + delayMs >= deadline) return false;
        const verdict = classifyTxError(err, ctx);
        if (!(err instanceof CommitUnknownError ? o.idempotent : verdict.transient)) return false;
        if (!this.#hooks.hasRetry) return true;
        const reason = retryReason(err, verdict);
        return this.#hooks.allowRetry({ attempt, delayMs, reason, sqlState: verdict.sqlState, error: err });
      },
      onRetry: ({ attempt, delayMs, error }) => {
        const verdict = classifyTxError(error, ctx);
        const reason = retryReason(error, verdict);
        this.#metrics.txRetries.inc({ reason });
        const { sqlState } = verdict;
        this.#logger.warn(
          { attempt, delayMs, reason, sqlState, isolation },
          'transaction failed transiently; retrying',
        );
      },
    };
  }

  #ended(outcome: TxOutcome, isolation: string, started: number): void {
    this.#metrics.txEnded.inc({ outcome, isolation });
    this.#metrics.txDuration.observe({ outcome }, (performance.now() - started) / 1000);
  }
}

function retryReason(err: unknown, { kind }: ErrorClassification): RetryReason {
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
