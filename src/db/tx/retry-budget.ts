import { performance } from 'node:perf_hooks';
import type { RetryBudgetConfig } from '../../config/app-config.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import type { TxHooks, TxRetryInfo } from './tx-hooks.js';

/** Time in which an empty bucket refills to `burst` by itself, ms (Finagle's retry budget window). */
export const RETRY_BUDGET_REFILL_MS = 10_000;

/** Float sums drift (ten times 0.1 is 0.9999999999999999): a token this close to whole counts as whole. */
const WHOLE = 1 - 1e-9;

/**
 * The built-in retry budget (Finagle's and gRPC's idea: retries are a fraction of the traffic,
 * so an overloaded or failing database is not hit by a multiple of it): a token bucket per
 * `TxManager`, plugged in as an ordinary hook, so the transaction path does not change.
 *
 * The bucket holds at most `burst` tokens and starts full. Every outermost transaction that
 * ends (`onEnd`) adds `ratio` tokens; time adds `burst` tokens per `RETRY_BUDGET_REFILL_MS`; a
 * retry (`beforeRetry`) takes one. With less than one token the retry is vetoed: the caller
 * gets the attempt's error at once (translated, as on exhaustion), the veto is counted in
 * `db_transaction_retries_vetoed_total{reason}`, and the first veto after the budget had
 * tokens logs one warn line (later ones only the manager's own error line per transaction).
 *
 * Over time, retries are at most `ratio` × transactions + `burst` per 10 s + `burst`. A hook added
 * after it that vetoes a retry it granted still costs a token.
 */
export class RetryBudget implements TxHooks {
  readonly #ratio: number;
  readonly #burst: number;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  #tokens: number;
  #refilledAt = performance.now();
  #exhausted = false;

  constructor(cfg: RetryBudgetConfig, opts: { metrics: Metrics; logger: Logger }) {
    this.#ratio = Math.max(0, cfg.ratio);
    this.#burst = Math.max(1, cfg.burst);
    this.#tokens = this.#burst;
    this.#metrics = opts.metrics;
    this.#logger = opts.logger;
  }

  /** Tokens now (a retry needs one). */
  get tokens(): number {
    this.#refill();
    return this.#tokens;
  }

  /** Takes a token for the retry, or vetoes it (returns false) when none is left. */
  beforeRetry(info: TxRetryInfo): boolean {
    this.#refill();
    if (this.#tokens >= WHOLE) {
      this.#tokens = Math.max(0, this.#tokens - 1);
      this.#exhausted = false;
      return true;
    }
    this.#metrics.txRetriesVetoed.inc({ reason: info.reason });
    if (!this.#exhausted) {
      this.#exhausted = true;
      this.#logger.warn(
        { ratio: this.#ratio, burst: this.#burst, reason: info.reason },
        'retry budget exhausted: failing transactions get their error without a retry until it refills',
      );
    }
    return false;
  }

  /** Each finished transaction earns `ratio` tokens. */
  onEnd(): void {
    this.#refill();
    this.#tokens = Math.min(this.#burst, this.#tokens + this.#ratio);
  }

  #refill(): void {
    const now = performance.now();
    const earned = ((now - this.#refilledAt) * this.#burst) / RETRY_BUDGET_REFILL_MS;
    this.#refilledAt = now;
    if (earned > 0) this.#tokens = Math.min(this.#burst, this.#tokens + earned);
  }
}
