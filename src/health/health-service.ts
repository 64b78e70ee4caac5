import { performance } from 'node:perf_hooks';
import {
  withTimeout,
  type BreakerState,
  type Database,
  type HealthReport,
  type PoolStats,
} from '../db/index.js';
import type { HealthLoop } from './health-loop.js';
import { PoolSaturation } from './pool-saturation.js';

/** Readiness verdict: ready, or why not. */
export interface Readiness {
  ready: boolean;
  /** Why the service is not ready: `starting`, `draining`, `database down`, `circuit breaker open`, `pool saturated`. */
  reason?: string;
  database: 'up' | 'down' | 'unknown';
  breaker: BreakerState;
  draining: boolean;
}

/** The `/health` document: the database's report plus the schema's migration status. */
export type FullHealthReport = HealthReport & {
  /** From the migration table; `{ error }` when it cannot be read (e.g. database down). */
  migrations: unknown;
  /**
   * With `twoPhase` configured: the prepared transactions in doubt for longer than its
   * `staleAfterMs` (`TwoPhaseCommit.inDoubt()`), or `{ error }` when they cannot be listed.
   * Reported, not a reason to be down: `TwoPhaseCommit.recover()` resolves them.
   */
  twoPhaseCommit?: { staleAfterMs: number; stale: unknown[] } | { error: string };
};

/** What the health report needs of a `TwoPhaseCommit` (its `inDoubt()`), and the age that counts as stale. */
interface TwoPhaseHealthSource {
  inDoubt(opts: { olderThanMs: number }): Promise<unknown[]>;
  /** In doubt for longer than this is reported, ms (default 60 000). */
  staleAfterMs?: number;
}

/** Collaborators of {@link HealthService}. */
export interface HealthServiceDeps {
  db: Pick<Database, 'health'>;
  loop: Pick<HealthLoop, 'last'>;
  breaker: { readonly state: BreakerState };
  /** Reads the migration status (applied, pending, latest); may reject. */
  migrationStatus?: () => Promise<unknown>;
  /** Bound on reading the migration status, ms (default 2000). */
  migrationStatusTimeoutMs?: number;
  /**
   * A `report()` is reused for this long, ms (`server.healthCacheTtl`); concurrent calls always
   * share the one in flight. Default 0: only that sharing.
   */
  reportCacheTtlMs?: number;
  /** The pool statistics readiness watches for saturation (with `poolSaturatedForMs`). */
  poolStats?: () => PoolStats;
  /**
   * Not ready once the pool has been saturated (every connection in use, acquires waiting)
   * this long, ms (`server.readiness.poolSaturatedFor`); 0 or absent: never.
   */
  poolSaturatedForMs?: number;
  /** Two-phase commit in use: `/health` reports its stale in-doubt transactions. */
  twoPhase?: TwoPhaseHealthSource;
}

/**
 * Liveness, readiness and the full health report, kept apart from business logic.
 * Readiness reads only in-memory state (the health loop's last report, the breaker and the
 * draining flag), so probes never queue behind database work.
 */
export class HealthService {
  readonly #deps: HealthServiceDeps;
  readonly #saturation: PoolSaturation | undefined;
  #draining = false;
  #report: Promise<FullHealthReport> | undefined;
  #reportDoneAt = -Infinity;

  /** Starts not draining; reads `deps` only when asked. */
  constructor(deps: HealthServiceDeps) {
    this.#deps = deps;
    const saturatedMs = deps.poolSaturatedForMs ?? 0;
    this.#saturation =
      deps.poolStats && saturatedMs > 0 ? new PoolSaturation(deps.poolStats, saturatedMs) : undefined;
  }

  /** True once shutdown has begun; readiness is then 503 for good. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Turns readiness off at once (first step of a graceful shutdown). Irreversible. */
  startDraining(): void {
    this.#draining = true;
    this.#saturation?.stop();
  }

  /** Ready only when the last health check was up, the breaker is closed and not draining. */
  readiness(): Readiness {
    const last = this.#deps.loop.last;
    const breaker = this.#deps.breaker.state;
    const database = last ? last.status : 'unknown';
    const base = { database, breaker, draining: this.#draining } as const;
    if (this.#draining) return { ready: false, reason: 'draining', ...base };
    if (!last) return { ready: false, reason: 'starting', ...base };
    if (last.status !== 'up') return { ready: false, reason: 'database down', ...base };
    if (breaker !== 'closed') return { ready: false, reason: `circuit breaker ${breaker}`, ...base };
    const saturatedMs = this.#saturation?.saturatedForMs() ?? 0;
    if (saturatedMs > 0 && saturatedMs >= (this.#deps.poolSaturatedForMs ?? 0))
      return { ready: false, reason: 'pool saturated', ...base };
    return { ready: true, ...base };
  }

  /**
   * A health check (bounded by the health-check timeout) plus migration status. Never throws.
   * Coalesced, because `/health` is unauthenticated and each check opens a server connection:
   * concurrent calls share the check in flight, and a finished one is reused for
   * `reportCacheTtlMs` (its `checkedAt` says when it ran).
   */
  report(): Promise<FullHealthReport> {
    const ttl = this.#deps.reportCacheTtlMs ?? 0;
    const current = this.#report;
    if (current && (this.#reportDoneAt === -Infinity || performance.now() - this.#reportDoneAt < ttl))
      return current;
    const run = this.#freshReport().finally(() => {
      this.#reportDoneAt = performance.now();
    });
    this.#reportDoneAt = -Infinity;
    this.#report = run;
    return run;
  }

  /** A fresh health check (bounded by the health-check timeout) plus migration status. Never throws. */
  async #freshReport(): Promise<FullHealthReport> {
    const [report, migrations, twoPhaseCommit] = await Promise.all([
      this.#deps.db.health(),
      this.#migrations(),
      this.#twoPhase(),
    ]);
    return {
      ...report,
      breaker: this.#deps.breaker.state,
      migrations,
      ...(twoPhaseCommit && { twoPhaseCommit }),
    };
  }

  async #twoPhase(): Promise<FullHealthReport['twoPhaseCommit']> {
    const source = this.#deps.twoPhase;
    if (!source) return undefined;
    const staleAfterMs = source.staleAfterMs ?? 60_000;
    try {
      return { staleAfterMs, stale: await this.#bounded(source.inDoubt({ olderThanMs: staleAfterMs })) };
    } catch {
      return { error: 'in-doubt transactions unavailable' };
    }
  }

  /** `p`, or a rejection after the migration-status bound (a report must not hang on a participant). */
  #bounded<T>(p: Promise<T>): Promise<T> {
    return withTimeout(p, this.#deps.migrationStatusTimeoutMs ?? 2000);
  }

  async #migrations(): Promise<unknown> {
    const read = this.#deps.migrationStatus;
    if (!read) return { error: 'not available' };
    // While the breaker is open the database is known to be unreachable: do not wait for it.
    if (this.#deps.breaker.state === 'open') return { error: 'circuit breaker open' };
    try {
      return await this.#bounded(read());
    } catch {
      // The reason is in the database report next to it; keep error text out of responses.
      return { error: 'migration status unavailable' };
    }
  }
}
