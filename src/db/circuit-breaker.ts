import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  type CircuitBreakerPolicy,
} from 'cockatiel';
import type { BreakerConfig } from '../config/app-config.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { BreakerState, HealthReport } from './database.js';
import { classifyError } from './errors/classify-error.js';
import { CircuitOpenError, ConnectionError } from './errors/errors.js';

const STATE_NAMES: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  // Isolation is never used here; report it as what it means to callers.
  [CircuitState.Isolated]: 'open',
};

/**
 * The database circuit breaker (cockatiel's `CircuitBreakerPolicy` with a `ConsecutiveBreaker`).
 *
 * Contract:
 * - Opens after `threshold` consecutive connection-class failures (connection refused/reset,
 *   08xxx, 57P01-57P03, `ConnectionError`). Constraint violations, validation errors,
 *   serialization failures, timeouts and application errors never count, and never reset
 *   the count either.
 * - While open, {@link execute} rejects at once with `CircuitOpenError` without calling the
 *   function, so no pool slot is waited for; `retryAfterMs` says when the trial comes.
 * - After `halfOpenAfter` ms the next call (or a passing health check, see {@link recordHealth})
 *   is the one trial; concurrent callers wait for its outcome. Success closes the breaker,
 *   a connection-class failure opens it again.
 * - Every transition is logged once and exported (`metrics.setBreakerState`,
 *   `metrics.breakerTransitions`).
 *
 * ```ts
 * const breaker = new CircuitBreaker({ threshold: 5, halfOpenAfter: 10_000 }, logger, metrics);
 * const user = await breaker.execute(() => tx.withTransaction((trx) => repo.getById(id, trx)));
 * ```
 */
export class CircuitBreaker {
  readonly #policy: CircuitBreakerPolicy;
  readonly #cfg: BreakerConfig;
  readonly #logger: Logger;
  readonly #metrics: Metrics | undefined;
  #openedAt = 0;

  /**
   * @param cfg `threshold` consecutive connection-class failures open it; it stays open
   *   `halfOpenAfter` ms, then lets one trial call through.
   * @param metrics Where state and transitions are exported; none when absent.
   */
  constructor(cfg: BreakerConfig, logger: Logger, metrics?: Metrics) {
    this.#cfg = cfg;
    this.#logger = logger.child({ component: 'circuit-breaker' });
    this.#metrics = metrics;
    this.#policy = circuitBreaker(handleWhen(isConnectionFailure), {
      halfOpenAfter: cfg.halfOpenAfter,
      breaker: new ConsecutiveBreaker(cfg.threshold),
    });
    this.#policy.onBreak(() => {
      this.#openedAt = Date.now();
    });
    this.#policy.onStateChange((state) => this.#transition(STATE_NAMES[state]));
    metrics?.setBreakerState('closed');
  }

  /** The current state; reads `open` until a call or health check triggers the trial. */
  get state(): BreakerState {
    return STATE_NAMES[this.#policy.state];
  }

  /** Milliseconds until the breaker lets a trial through; 0 unless open. */
  retryAfterMs(): number {
    if (this.#policy.state !== CircuitState.Open) return 0;
    return Math.max(0, this.#openedAt + this.#cfg.halfOpenAfter - Date.now());
  }

  /**
   * Runs `fn` through the breaker.
   * @throws CircuitOpenError while open (without calling `fn`); otherwise whatever `fn` throws.
   */
  async execute<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await this.#policy.execute(fn);
    } catch (err) {
      if (err instanceof BrokenCircuitError) throw new CircuitOpenError(this.retryAfterMs(), { cause: err });
      throw err;
    }
  }

  /**
   * Feeds one health check into the breaker: a down report counts as a connection-class
   * failure while closed; an up report is the trial that closes an open breaker once
   * `halfOpenAfter` has passed (so recovery needs no client traffic). Never throws.
   */
  async recordHealth(report: HealthReport): Promise<void> {
    const state = this.#policy.state;
    try {
      if (report.status === 'down' && state === CircuitState.Closed) {
        await this.#policy.execute(() => {
          throw new ConnectionError(report.error ?? 'Health check failed.');
        });
      } else if (report.status === 'up' && state === CircuitState.Open) {
        await this.#policy.execute(() => Promise.resolve());
      }
    } catch {
      // The failure fed above, or "still open" before halfOpenAfter: both expected.
    }
  }

  #transition(to: BreakerState): void {
    this.#metrics?.setBreakerState(to);
    this.#metrics?.breakerTransitions.inc({ to });
    const fields = { breaker: to, threshold: this.#cfg.threshold, halfOpenAfterMs: this.#cfg.halfOpenAfter };
    if (to === 'open') this.#logger.error(fields, 'circuit breaker opened: database work fails fast');
    else if (to === 'half-open') this.#logger.warn(fields, 'circuit breaker half-open: one trial call');
    else this.#logger.info(fields, 'circuit breaker closed: database reachable again');
  }
}

/** True for failures that say "the database is unreachable", the only ones the breaker counts. */
function isConnectionFailure(err: unknown): boolean {
  return classifyError(err).kind === 'connection';
}
