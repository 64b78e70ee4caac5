import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type { Knex } from 'knex';
import type { PostgresConfig } from '../../config/app-config.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import { parseHostPort } from '../../config/host-port.js';
import { withTimeout } from '../with-timeout.js';
import { lsnText, lsnValue } from './commit-token.js';
import { ReplicaPool, type ReplicaHealth } from './replica-pool.js';

/**
 * Between two reads of a replica's position while a read waits for it: 1 ms, doubling up to
 * 10 ms (on a healthy stream a commit is replayed within about a millisecond; a long wait need
 * not poll hard).
 */
const FIRST_POLL_MS = 1;
const MAX_POLL_MS = 10;
/** How long reads skip waiting for a replica that made one wait in vain (until a check or a catch-up clears it), ms. */
const LAG_SKIP_MS = 5_000;

/** Where a replica read runs: a replica's pool, or the primary's (no replica could serve it). */
export interface ReplicaRoute {
  knex: Knex;
  replica: ReplicaPool | undefined;
}

/**
 * Routes read-only transactions with `target: 'replica'` to one of `database.postgres.replicas`
 * and keeps read-your-writes: a read that must see position `required` (the last commit this
 * database acknowledged, or a caller's `after` token) runs on a replica only once that replica
 * has replayed it (`pg_last_wal_replay_lsn()`), waiting up to `replicaWaitTimeout`; otherwise it
 * runs on the primary. Replicas are tried round-robin; down and promoted ones are skipped; one
 * that made a read wait in vain is `lagging` and, for a few seconds (or until a check finds it
 * keeping up), is used only when it has already replayed what the read needs. A background
 * check (every `healthCheckInterval`) refreshes each replica's state and lag.
 */
export class ReplicaRouter {
  readonly #pools: ReplicaPool[];
  readonly #primary: () => Knex;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #waitMs: number;
  readonly #checkTimeoutMs: number;
  readonly #intervalMs: number;
  #next = 0;
  #timer: NodeJS.Timeout | undefined;
  /** The highest commit position acknowledged through this router's database (0: none yet). */
  #lastCommit = 0n;
  /** A commit whose position could not be read: the next replica read learns the primary's first. */
  #positionUnknown = false;

  constructor(cfg: PostgresConfig, opts: { logger: Logger; metrics: Metrics; primary: () => Knex }) {
    this.#logger = opts.logger.child({ component: 'replicas' });
    this.#pools = cfg.replicas.map((r) => new ReplicaPool(cfg, parseHostPort(r), this.#logger));
    this.#primary = opts.primary;
    this.#metrics = opts.metrics;
    this.#waitMs = cfg.replicaWaitTimeout;
    this.#checkTimeoutMs = cfg.healthCheckTimeout;
    this.#intervalMs = cfg.healthCheckInterval;
    opts.metrics.observeReplicas(() => this.health());
    this.start();
  }

  /**
   * Picks where a replica read runs. `required`: the position it must see (undefined: none,
   * any usable replica will do). `deadline` (performance.now() clock) caps the wait.
   */
  async route(required: bigint | undefined, deadline?: number): Promise<ReplicaRoute> {
    const usable = this.#rotation().filter((p) => p.usable);
    if (usable.length === 0) return this.#fallback('unavailable');
    if (required === undefined || required === 0n) return this.#served(usable[0]!);
    const ready = usable.find((p) => p.replay >= required);
    if (ready) {
      ready.caughtUp();
      return this.#served(ready);
    }
    const until = Math.min(performance.now() + this.#waitMs, deadline ?? Infinity);
    // A lagging replica gets one look (no wait); the others are polled until the bound.
    let waiting = usable;
    for (let pollMs = FIRST_POLL_MS; ; pollMs = Math.min(MAX_POLL_MS, pollMs * 2)) {
      const next: ReplicaPool[] = [];
      for (const p of waiting) {
        const left = until - performance.now();
        const replay = await p.position(Math.max(1, Math.min(left, this.#checkTimeoutMs)));
        if (replay === undefined) continue; // down or promoted now
        if (replay >= required) {
          p.caughtUp();
          return this.#served(p);
        }
        if (!p.lagging) next.push(p);
      }
      if (next.length === 0) return this.#fallback(usable.some((p) => p.usable) ? 'lag' : 'unavailable');
      if (performance.now() + pollMs >= until) {
        // Waited the whole bound: later reads do not wait for it until a check finds it keeping up.
        for (const p of next) p.markLagging(Math.max(LAG_SKIP_MS, this.#waitMs));
        return this.#fallback('lag');
      }
      waiting = next;
      await delay(pollMs);
    }
  }

  /**
   * The WAL position of the last commit acknowledged on this database's primary (by any
   * `TxManager` sharing these replicas), as a token another process can pass as
   * `{ after: token }`; undefined before the first read-write commit.
   */
  lastCommitToken(): string | undefined {
    return this.#lastCommit > 0n ? lsnText(this.#lastCommit) : undefined;
  }

  /**
   * Records a commit's position: the WAL insert position read on the committing connection,
   * at or past the end of its commit record. The insert position, not the write position
   * (`pg_current_wal_lsn()`): with `synchronous_commit = off` COMMIT returns before its
   * record is written. Never throws: a failure makes the next replica read ask the primary.
   */
  async committed(connection: unknown): Promise<void> {
    try {
      const client = connection as { query(sql: string): Promise<{ rows: Array<{ lsn: string }> }> };
      const { rows } = await client.query('select pg_current_wal_insert_lsn()::text as lsn');
      this.#advance(lsnValue(rows[0]?.lsn));
    } catch (err) {
      this.#positionUnknown = true;
      this.#logger.debug(
        { err },
        'could not read the commit position; the next replica read asks the primary',
      );
    }
  }

  /** What a replica read begun now must see: the acknowledged commits and `after` ('primary': unknown, read the primary). */
  async required(after: bigint | undefined): Promise<bigint | undefined | 'primary'> {
    if (this.#positionUnknown) {
      this.#positionUnknown = false;
      try {
        const res = await this.#primary().raw<{ rows: Array<{ lsn: string }> }>(
          'select pg_current_wal_insert_lsn()::text as lsn',
        );
        this.#advance(lsnValue(res.rows[0]?.lsn));
      } catch {
        this.#positionUnknown = true;
        return 'primary';
      }
    }
    const own = this.#lastCommit > 0n ? this.#lastCommit : undefined;
    if (after === undefined) return own;
    return own === undefined || after > own ? after : own;
  }

  #advance(lsn: bigint | undefined): void {
    if (lsn === undefined) this.#positionUnknown = true;
    else if (lsn > this.#lastCommit) this.#lastCommit = lsn;
  }

  /** A replica route whose BEGIN failed: the replica is marked down (or promoted); the read goes elsewhere. */
  failed(route: ReplicaRoute, err: unknown): void {
    if (!route.replica) return;
    route.replica.failed(err);
    this.#logger.warn(
      { replica: route.replica.name, state: route.replica.state, error: route.replica.error },
      'replica unusable; reads skip it until a health check finds it a standby again',
    );
  }

  /** The primary's route, counted as a fallback (a replica's BEGIN failed). */
  fallBack(): ReplicaRoute {
    return this.#fallback('unavailable');
  }

  /** Every replica's state now (no I/O). */
  health(): ReplicaHealth[] {
    return this.#pools.map((p) => p.health());
  }

  /** Checks every replica now (bounded by healthCheckTimeout) and reports them. Never throws. */
  async check(): Promise<ReplicaHealth[]> {
    let primary: bigint | undefined;
    try {
      const res = await withTimeout(
        this.#primary().raw<{ rows: Array<{ lsn: string }> }>('select pg_current_wal_lsn()::text as lsn'),
        this.#checkTimeoutMs,
      );
      primary = lsnValue(res.rows[0]?.lsn);
    } catch {
      // The primary is down or a standby: lag is unknown, states still refresh.
    }
    return Promise.all(this.#pools.map((p) => p.check(primary, this.#checkTimeoutMs)));
  }

  /** Starts the background check (idempotent; the timer never keeps the process alive). */
  start(): void {
    if (this.#timer || this.#intervalMs <= 0) return;
    this.#timer = setInterval(() => void this.check(), this.#intervalMs);
    this.#timer.unref();
  }

  /** Stops the check and closes every replica pool. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.all(this.#pools.map((p) => p.close()));
  }

  /** Opens the replica pools again after `close()`. */
  reopen(): void {
    for (const p of this.#pools) p.reopen();
    this.start();
  }

  #rotation(): ReplicaPool[] {
    const n = this.#pools.length;
    const start = this.#next++ % n;
    return [...this.#pools.slice(start), ...this.#pools.slice(0, start)];
  }

  /** Counts a replica read that has begun where `route` sent it. */
  begun(route: ReplicaRoute): void {
    this.#metrics.replicaReads.inc({ target: route.replica?.name ?? 'primary' });
  }

  #served(p: ReplicaPool): ReplicaRoute {
    return { knex: p.knex, replica: p };
  }

  #fallback(reason: 'lag' | 'unavailable'): ReplicaRoute {
    this.#metrics.replicaFallbacks.inc({ reason });
    return { knex: this.#primary(), replica: undefined };
  }
}
