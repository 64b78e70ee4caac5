import type { CircuitBreaker, Database, HealthReport } from '../db/index.js';
import type { Logger } from '../observability/logger.js';

/** Settings and collaborators of a {@link HealthLoop}. */
export interface HealthLoopOptions {
  /** Period between the end of one check and the start of the next, ms. */
  intervalMs: number;
  logger: Logger;
  /** Fed with every report (a down report counts as a connection failure; up closes it). */
  breaker?: Pick<CircuitBreaker, 'recordHealth'>;
}

/**
 * Runs `db.health()` every `intervalMs` and keeps the last report for readiness.
 *
 * Contract:
 * - `start()` runs the first check at once; checks never overlap (the next one is scheduled
 *   when the previous one ends), and the timer is `unref()`ed, so the loop never keeps the
 *   process alive.
 * - Logs the first result, then only transitions: up -> down at error, down -> up at info,
 *   once each (not on every tick).
 * - Feeds each report to the circuit breaker. (`PostgresDatabase.health()` itself records the
 *   `up` gauge and the health-check latency histogram.)
 * - `stop()` cancels the timer and waits for a check in flight. Never throws.
 */
export class HealthLoop {
  readonly #db: Pick<Database, 'health'>;
  readonly #opts: HealthLoopOptions;
  readonly #logger: Logger;
  #last: HealthReport | undefined;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<HealthReport> | undefined;
  #running = false;

  constructor(db: Pick<Database, 'health'>, opts: HealthLoopOptions) {
    this.#db = db;
    this.#opts = opts;
    this.#logger = opts.logger.child({ component: 'health-loop' });
  }

  /** The last report, or undefined before the first check has finished. */
  get last(): HealthReport | undefined {
    return this.#last;
  }

  /** Starts the loop (idempotent); the first check runs at once. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    void this.#tick();
  }

  /** Stops the loop and waits for a check in flight. Idempotent. */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#inFlight?.catch(() => undefined);
  }

  /** Runs one check now (also while stopped) and records it; never throws. */
  async checkNow(): Promise<HealthReport> {
    if (this.#inFlight) return this.#inFlight;
    this.#inFlight = this.#check().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #tick(): Promise<void> {
    await this.checkNow();
    if (!this.#running) return;
    this.#timer = setTimeout(() => void this.#tick(), this.#opts.intervalMs);
    this.#timer.unref();
  }

  async #check(): Promise<HealthReport> {
    let report: HealthReport;
    try {
      report = await this.#db.health();
    } catch (err) {
      // health() promises never to throw; if it does anyway, that is a down database.
      report = {
        status: 'down',
        latencyMs: 0,
        checkedAt: new Date().toISOString(),
        error: err instanceof Error ? err.message : 'health check failed',
        pool: emptyPool(),
        breaker: 'closed',
      };
    }
    this.#record(report);
    await this.#opts.breaker?.recordHealth(report);
    return report;
  }

  #record(report: HealthReport): void {
    const previous = this.#last?.status;
    this.#last = report;
    if (previous === report.status) return;
    const fields = { status: report.status, latencyMs: report.latencyMs, error: report.error };
    if (report.status === 'down')
      this.#logger.error(fields, previous ? 'database went down' : 'database is down');
    else this.#logger.info(fields, previous ? 'database is back up' : 'database is up');
  }
}

function emptyPool(): HealthReport['pool'] {
  return {
    maxOpenConnections: 0,
    openConnections: 0,
    inUse: 0,
    idle: 0,
    pendingAcquires: 0,
    waitCount: 0,
    waitDurationMs: 0,
    maxIdleClosed: 0,
    maxIdleTimeClosed: 0,
    maxLifetimeClosed: 0,
  };
}
