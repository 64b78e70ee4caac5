import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { withTimeout } from '../db/with-timeout.js';
import { BREAKER_STATES, type BreakerState, type PoolStats, type ReplicaHealth } from '../db/database.js';

/**
 * Why a transaction was retried (the `reason` label). 'failover': the session was read-only in
 * a read-write transaction (25006) or the server refused connections (57P03).
 */
export type RetryReason =
  'serialization' | 'deadlock' | 'connection' | 'commit_aborted' | 'commit_unknown' | 'failover';

/** What the in-doubt gauges read: one entry per prepared transaction in doubt now. */
export interface InDoubtSample {
  /** How long it has been in doubt, ms. */
  ageMs: number;
  /** True when the commit was decided (recovery will commit it). */
  decided: boolean;
}

/** Bound on reading the in-doubt transactions at scrape time, ms: a scrape must not hang on a participant. */
const IN_DOUBT_READ_TIMEOUT_MS = 2_000;

/** How a transaction ended (the `outcome` label). */
export type TxOutcome = 'committed' | 'rolled_back' | 'retry_exhausted' | 'commit_unknown' | 'timeout';

/**
 * Every counter the data layer keeps, in one place (prom-client). Components take a
 * `Metrics` and update it; `/metrics` renders `registry`. Each instance has its own
 * registry, so tests and several databases in one process never collide.
 */
export class Metrics {
  /** This instance's own registry; `/metrics` renders it. */
  readonly registry: Registry;
  /** `db_transactions_started_total{isolation}`: every attempt of a transaction. */
  readonly txStarted: Counter<'isolation'>;
  /** `db_transactions_total{outcome,isolation}`: how transactions ended (see `TxOutcome`). */
  readonly txEnded: Counter<'outcome' | 'isolation'>;
  /** `db_transaction_retries_total{reason}` (see `RetryReason`). */
  readonly txRetries: Counter<'reason'>;
  /** `db_transaction_duration_seconds{outcome}`, retries included. */
  readonly txDuration: Histogram<'outcome'>;
  /** `db_query_duration_seconds`: every statement, seconds. */
  readonly queryDuration: Histogram;
  /** `db_pool_acquire_wait_seconds`: time to get a pool connection. */
  readonly acquireWait: Histogram;
  /** `db_pool_wait_count_total`: acquires that had to wait (no idle connection, no room to open one); Go's `WaitCount`. */
  readonly poolWaits: Counter;
  /** `db_pool_wait_duration_seconds_total`: the time those acquires waited; Go's `WaitDuration`. */
  readonly poolWaitSeconds: Counter;
  /** `db_transaction_retries_vetoed_total{reason}`: retries the retry budget refused (the caller got the error). */
  readonly txRetriesVetoed: Counter<'reason'>;
  /** `db_connect_attempts_total{result}`: success, retry or failure of `connect()` attempts. */
  readonly connectAttempts: Counter<'result'>;
  /** `db_errors_total{class}`: database errors by class (`connection` for broken connections). */
  readonly errors: Counter<'class'>;
  /** `db_health_check_latency_seconds{status}`. */
  readonly healthLatency: Histogram<'status'>;
  /** `db_up`: 1 when the last health check was up, else 0. */
  readonly up: Gauge;
  /** `db_circuit_breaker_state{state}`: 1 for the current state, 0 for the others. */
  readonly breakerState: Gauge<'state'>;
  /** `db_circuit_breaker_transitions_total{to}`. */
  readonly breakerTransitions: Counter<'to'>;
  /** Replica reads (`target: 'replica'`) by where they ran: a replica's `host:port`, or `primary`. */
  readonly replicaReads: Counter<'target'>;
  /** Replica reads sent to the primary, by reason: `lag` (no replica replayed in time), `unavailable`. */
  readonly replicaFallbacks: Counter<'reason'>;
  /** `db_commit_lookups_total{outcome}`: lost COMMITs looked up with `pg_xact_status`, by what was found. */
  readonly commitLookups: Counter<'outcome'>;
  /** `http_requests_total{method,route,status_code}`: HTTP responses sent (the service's server). */
  readonly httpRequests: Counter<'method' | 'route' | 'status_code'>;
  /** `http_request_duration_seconds{method,route,status_code}`: from request to response sent. */
  readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  #replicas: (() => ReplicaHealth[]) | undefined;
  #inDoubt: (() => Promise<InDoubtSample[]>) | undefined;
  #poolStats: (() => PoolStats) | undefined;

  /**
   * @param opts.defaultMetrics Also collect Node's process metrics (prom-client's defaults). Default false.
   * @param opts.prefix Prefix of every metric name; default `db_` (the names above assume it).
   */
  constructor(opts: { defaultMetrics?: boolean; prefix?: string } = {}) {
    const p = opts.prefix ?? 'db_';
    const registers = [(this.registry = new Registry())];
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry });
    this.txStarted = new Counter({
      name: `${p}transactions_started_total`,
      help: 'Transactions begun (each attempt of a retried transaction counts).',
      labelNames: ['isolation'],
      registers,
    });
    this.txEnded = new Counter({
      name: `${p}transactions_total`,
      help: 'Transactions ended, by outcome and isolation level.',
      labelNames: ['outcome', 'isolation'],
      registers,
    });
    this.txRetries = new Counter({
      name: `${p}transaction_retries_total`,
      help: 'Transaction retries, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.txDuration = new Histogram({
      name: `${p}transaction_duration_seconds`,
      help: 'Duration of whole transactions including retries.',
      labelNames: ['outcome'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    });
    this.queryDuration = new Histogram({
      name: `${p}query_duration_seconds`,
      help: 'Duration of single statements.',
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.acquireWait = new Histogram({
      name: `${p}pool_acquire_wait_seconds`,
      help: 'Time spent waiting for a pool connection.',
      buckets: [0.0001, 0.001, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.poolWaits = new Counter({
      name: `${p}pool_wait_count_total`,
      help: 'Acquires that had to wait for a pool connection (none idle, no room to open one).',
      registers,
    });
    this.poolWaitSeconds = new Counter({
      name: `${p}pool_wait_duration_seconds_total`,
      help: 'Total time acquires waited for a pool connection.',
      registers,
    });
    this.txRetriesVetoed = new Counter({
      name: `${p}transaction_retries_vetoed_total`,
      help: 'Transaction retries refused by the retry budget, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.connectAttempts = new Counter({
      name: `${p}connect_attempts_total`,
      help: 'Attempts of Database.connect(), by result.',
      labelNames: ['result'],
      registers,
    });
    this.errors = new Counter({
      name: `${p}errors_total`,
      help: 'Database errors, by classified kind.',
      labelNames: ['class'],
      registers,
    });
    this.healthLatency = new Histogram({
      name: `${p}health_check_latency_seconds`,
      help: 'Latency of health checks.',
      labelNames: ['status'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.up = new Gauge({ name: `${p}up`, help: '1 when the last health check was up.', registers });
    this.breakerState = new Gauge({
      name: `${p}circuit_breaker_state`,
      help: 'Circuit breaker state: 1 for the current state, 0 for the others.',
      labelNames: ['state'],
      registers,
    });
    this.breakerTransitions = new Counter({
      name: `${p}circuit_breaker_transitions_total`,
      help: 'Circuit breaker transitions, by state entered.',
      labelNames: ['to'],
      registers,
    });
    const poolGauge = (name: string, help: string, pick: (s: PoolStats) => number): void => {
      // Pool gauges are read at scrape time from the live pool, never cached.
      const read = (): PoolStats | undefined => this.#poolStats?.();
      new Gauge({
        name: `${p}pool_${name}`,
        help,
        registers,
        collect() {
          const s = read();
          if (s) this.set(pick(s));
        },
      });
    };
    poolGauge('max_connections', 'Configured pool size.', (s) => s.maxOpenConnections);
    poolGauge('open_connections', 'Connections open (in use + idle).', (s) => s.openConnections);
    poolGauge('in_use_connections', 'Connections checked out.', (s) => s.inUse);
    poolGauge('idle_connections', 'Connections idle in the pool.', (s) => s.idle);
    poolGauge('pending_acquires', 'Acquires waiting for a connection.', (s) => s.pendingAcquires);
    poolGauge('wait_count', 'Acquires that had to wait, since start.', (s) => s.waitCount);
    poolGauge(
      'max_lifetime_closed',
      'Connections retired after connMaxLifetime.',
      (s) => s.maxLifetimeClosed,
    );
    poolGauge(
      'max_idle_time_closed',
      'Connections closed after connMaxIdleTime.',
      (s) => s.maxIdleTimeClosed,
    );
    poolGauge(
      'max_idle_closed',
      'Connections closed because more than maxIdleConns were idle.',
      (s) => s.maxIdleClosed,
    );
    this.replicaReads = new Counter({
      name: `${p}replica_reads_total`,
      help: "Read-only transactions with target 'replica', by where they ran (a replica, or primary).",
      labelNames: ['target'],
      registers,
    });
    this.replicaFallbacks = new Counter({
      name: `${p}replica_fallbacks_total`,
      help: 'Replica reads run on the primary, by reason (lag, unavailable).',
      labelNames: ['reason'],
      registers,
    });
    const replicaGauge = (
      name: string,
      help: string,
      pick: (r: ReplicaHealth) => number | undefined,
    ): void => {
      const read = (): ReplicaHealth[] => this.#replicas?.() ?? [];
      new Gauge({
        name: `${p}replica_${name}`,
        help,
        labelNames: ['replica'],
        registers,
        collect() {
          this.reset();
          for (const r of read()) {
            const value = pick(r);
            if (value !== undefined) this.set({ replica: r.replica }, value);
          }
        },
      });
    };
    replicaGauge(
      'up',
      '1 when the replica is usable for reads (up or lagging), 0 when down or promoted.',
      (r) => (r.state === 'down' || r.state === 'promoted' ? 0 : 1),
    );
    replicaGauge(
      'lag_bytes',
      "The replica's replay lag behind the primary at the last check, bytes.",
      (r) => r.lagBytes,
    );
    this.commitLookups = new Counter({
      name: `${p}commit_lookups_total`,
      help: 'COMMITs whose connection was lost, looked up with pg_xact_status, by outcome found (committed, aborted, unknown).',
      labelNames: ['outcome'],
      registers,
    });
    this.httpRequests = new Counter({
      name: 'http_requests_total',
      help: 'HTTP responses sent, by method, route and status code.',
      labelNames: ['method', 'route', 'status_code'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration, from request to response sent.',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.#inDoubtGauges(p, registers);
    this.setBreakerState('closed');
  }

  /**
   * `db_two_phase_in_doubt{decided}` and `db_two_phase_in_doubt_oldest_seconds`, read at scrape
   * time from `observeInDoubt`'s source (bounded; a failed or slow read leaves them empty:
   * the other alerts cover a participant that cannot be reached).
   */
  #inDoubtGauges(p: string, registers: Registry[]): void {
    const read = async (): Promise<InDoubtSample[] | undefined> => {
      const source = this.#inDoubt;
      if (!source) return undefined;
      try {
        return await withTimeout(source(), IN_DOUBT_READ_TIMEOUT_MS);
      } catch {
        return undefined;
      }
    };
    let last: Promise<InDoubtSample[] | undefined> | undefined;
    // Both gauges are collected in one scrape: one read serves both.
    const shared = (): Promise<InDoubtSample[] | undefined> => {
      const current = (last ??= read().finally(() => setImmediate(() => (last = undefined))));
      return current;
    };
    new Gauge({
      name: `${p}two_phase_in_doubt`,
      help: 'Prepared two-phase transactions of this coordinator in doubt now, by whether the commit was decided.',
      labelNames: ['decided'],
      registers,
      async collect() {
        this.reset();
        const all = await shared();
        if (!all) return;
        this.set({ decided: 'true' }, all.filter((t) => t.decided).length);
        this.set({ decided: 'false' }, all.filter((t) => !t.decided).length);
      },
    });
    new Gauge({
      name: `${p}two_phase_in_doubt_oldest_seconds`,
      help: 'How long the oldest prepared two-phase transaction of this coordinator has been in doubt (0: none).',
      registers,
      async collect() {
        this.reset();
        const all = await shared();
        if (all) this.set(all.reduce((max, t) => Math.max(max, t.ageMs), 0) / 1000);
      },
    });
  }

  /** Where the two-phase in-doubt gauges read from at scrape time (`TwoPhaseCommit` with `metrics`). */
  observeInDoubt(read: () => Promise<InDoubtSample[]>): void {
    this.#inDoubt = read;
  }

  /** Where replica gauges read from at scrape time. */
  observeReplicas(read: () => ReplicaHealth[]): void {
    this.#replicas = read;
  }

  /** Where pool gauges read from at scrape time. */
  observePool(read: () => PoolStats): void {
    this.#poolStats = read;
  }

  /** Sets `breakerState` to 1 for `state` and 0 for the other states. */
  setBreakerState(state: BreakerState): void {
    for (const s of BREAKER_STATES) this.breakerState.set({ state: s }, s === state ? 1 : 0);
  }
}
