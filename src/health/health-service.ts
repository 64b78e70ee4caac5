import type { BreakerState, Database, HealthReport } from '../db/index.js';
import type { HealthLoop } from './health-loop.js';

/** Readiness verdict: ready, or why not. */
export interface Readiness {
  ready: boolean;
  /** Why the service is not ready: `starting`, `draining`, `database down`, `circuit breaker open`. */
  reason?: string;
  database: 'up' | 'down' | 'unknown';
  breaker: BreakerState;
  draining: boolean;
}

/** The `/health` document: the database's report plus the schema's migration status. */
export type FullHealthReport = HealthReport & {
  /** From the migration table; `{ error }` when it cannot be read (e.g. database down). */
  migrations: unknown;
};

/** Collaborators of {@link HealthService}. */
export interface HealthServiceDeps {
  db: Pick<Database, 'health'>;
  loop: Pick<HealthLoop, 'last'>;
  breaker: { readonly state: BreakerState };
  /** Reads the migration status (applied, pending, latest); may reject. */
  migrationStatus?: () => Promise<unknown>;
  /** Bound on reading the migration status, ms (default 2000). */
  migrationStatusTimeoutMs?: number;
}

/**
 * Liveness, readiness and the full health report, kept apart from business logic.
 * Readiness reads only in-memory state (the health loop's last report, the breaker and the
 * draining flag), so probes never queue behind database work.
 */
export class HealthService {
  readonly #deps: HealthServiceDeps;
  #draining = false;

  /** Starts not draining; reads `deps` only when asked. */
  constructor(deps: HealthServiceDeps) {
    this.#deps = deps;
  }

  /** True once shutdown has begun; readiness is then 503 for good. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Turns readiness off at once (first step of a graceful shutdown). Irreversible. */
  startDraining(): void {
    this.#draining = true;
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
    return { ready: true, ...base };
  }

  /** A fresh health check (bounded by the health-check timeout) plus migration status. Never throws. */
  async report(): Promise<FullHealthReport> {
    const [report, migrations] = await Promise.all([this.#deps.db.health(), this.#migrations()]);
    return { ...report, breaker: this.#deps.breaker.state, migrations };
  }

  async #migrations(): Promise<unknown> {
    const read = this.#deps.migrationStatus;
    if (!read) return { error: 'not available' };
    // While the breaker is open the database is known to be unreachable: do not wait for it.
    if (this.#deps.breaker.state === 'open') return { error: 'circuit breaker open' };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), this.#deps.migrationStatusTimeoutMs ?? 2000);
    });
    try {
      return await Promise.race([read(), timeout]);
    } catch {
      // The reason is in the database report next to it; keep error text out of responses.
      return { error: 'migration status unavailable' };
    } finally {
      clearTimeout(timer);
    }
  }
}
