import { performance } from 'node:perf_hooks';
import knexFactory, { type Knex } from 'knex';
import type { PostgresConfig } from '../../config/app-config.js';
import type { Logger } from '../../observability/logger.js';
import { PgConnectionOpener, describeError } from '../connection/pg-connection-opener.js';
import { formatHostPort, type HostPort } from '../../config/host-port.js';
import { isBroken, setConnectionOpener, type DriverConnection } from '../knex-internals.js';
import { knexConfig } from '../pool/knex-config.js';
import { TimeoutExpiredError, withTimeout } from '../with-timeout.js';
import { lsnText, lsnValue } from './commit-token.js';

/**
 * What is known of a replica: `unknown` (not checked yet), `up` (a standby that keeps up),
 * `lagging` (its replay fell behind the primary by more than one health-check interval),
 * `down` (unreachable), `promoted` (no longer in recovery: it left replication and is skipped
 * for good until a check finds it a standby again).
 */
export type ReplicaState = 'unknown' | 'up' | 'lagging' | 'down' | 'promoted';

/** One replica in `HealthReport.replicas`. */
export interface ReplicaHealth {
  /** `host:port`. */
  replica: string;
  state: ReplicaState;
  /** The last WAL position it was seen to have replayed (pg_lsn text). */
  replayLsn?: string;
  /** How far its replay is behind the primary's current WAL position, bytes (at the last check). */
  lagBytes?: number;
  /** Why it is down; secret-free. */
  error?: string;
}

/** Where a replica's replay stands, and whether it is still a standby: one round trip. */
const POSITION_SQL = 'select pg_is_in_recovery() as standby, pg_last_wal_replay_lsn()::text as replay';

/**
 * One replica: its own knex pool (connections opened by a `PgConnectionOpener` aimed at it
 * alone with targetSessionAttrs `standby`, so a connection to it retires itself once it is
 * promoted), the highest replay position seen (replay only moves forward) and its state.
 */
export class ReplicaPool {
  readonly name: string;
  readonly knex: Knex;
  state: ReplicaState = 'unknown';
  /** Highest replay position seen (0 = none yet). */
  replay = 0n;
  lagBytes: number | undefined;
  error: string | undefined;
  /** Until when (performance.now() clock) a read does not wait for it, after one waited in vain. */
  #lagUntil = 0;
  /** The primary's position at the previous check: a replay still below it is lagging. */
  #previousPrimary: bigint | undefined;
  #initialised = true;

  constructor(cfg: PostgresConfig, target: HostPort, logger: Logger) {
    this.name = formatHostPort(target);
    const log = logger.child({ replica: this.name });
    const opener = new PgConnectionOpener(cfg, log, { hosts: [target], targetSessionAttrs: 'standby' });
    this.knex = knexFactory(
      knexConfig(
        { ...cfg, host: target.host, port: target.port },
        (c) => !isBroken(c as DriverConnection),
        log,
      ),
    );
    setConnectionOpener(this.knex, () => opener.open());
  }

  /** Usable for a read now (not down, not promoted). */
  get usable(): boolean {
    return this.state !== 'down' && this.state !== 'promoted';
  }

  /** True while reads should not wait for it (it made one wait the whole bound, or a check found it behind). */
  get lagging(): boolean {
    return this.state === 'lagging' && performance.now() < this.#lagUntil;
  }

  /** A read waited the whole bound for it: later reads take one look and do not wait, for `forMs`. */
  markLagging(forMs: number): void {
    this.state = 'lagging';
    this.#lagUntil = performance.now() + forMs;
  }

  /** It had replayed what a read needed: no longer lagging. */
  caughtUp(): void {
    if (this.state === 'lagging') this.state = 'up';
  }

  /**
   * Reads the replica's replay position (one round trip on its pool), within `timeoutMs`.
   * Marks it `promoted` when it is no longer in recovery, `down` when it cannot be reached (not when it
   * merely did not answer within `timeoutMs`: undefined then, the state unchanged).
   * @returns the position, or undefined when the replica is not usable.
   */
  async position(timeoutMs: number): Promise<bigint | undefined> {
    try {
      const res = await withTimeout(
        this.knex.raw<{ rows: Array<{ standby: boolean; replay: string | null }> }>(POSITION_SQL),
        timeoutMs,
      );
      const row = res.rows[0];
      if (!row?.standby) {
        this.#mark('promoted', 'no longer in recovery (promoted)');
        return undefined;
      }
      const replay = lsnValue(row.replay) ?? 0n;
      if (replay > this.replay) this.replay = replay;
      if (this.state === 'unknown' || this.state === 'down') this.state = 'up';
      this.error = undefined;
      return this.replay;
    } catch (err) {
      // No answer within the caller's bound (a read's replicaWaitTimeout can be shorter than a
      // connect) says nothing about the replica being down: the health check decides that.
      if (!(err instanceof TimeoutExpiredError)) this.failed(err);
      return undefined;
    }
  }

  /** Records a failure to reach it: `promoted` when it answered as a primary, else `down`. */
  failed(err: unknown): void {
    const chain = [err, (err as { cause?: unknown } | undefined)?.cause];
    const promoted = chain.some((e) => (e as { code?: unknown } | undefined)?.code === 'NO_MATCHING_HOST');
    if (promoted) return this.#mark('promoted', 'no longer in recovery (promoted)');
    const { code, message } = describeError(err);
    this.#mark('down', code ? `${code}: ${message}` : message);
  }

  /** A health check: position, lag against `primary` (the primary's current position, if known). */
  async check(primary: bigint | undefined, timeoutMs: number): Promise<ReplicaHealth> {
    const replay = await this.position(timeoutMs);
    if (replay !== undefined && primary !== undefined) {
      this.lagBytes = primary > replay ? Number(primary - replay) : 0;
      const behind = this.#previousPrimary !== undefined && replay < this.#previousPrimary;
      if (behind) this.markLagging(Infinity);
      else this.state = 'up';
    }
    // Compared at the next check only while it stays reachable: one just back starts afresh.
    this.#previousPrimary = replay === undefined ? undefined : primary;
    return this.health();
  }

  /** The latest known state, without I/O. */
  health(): ReplicaHealth {
    return {
      replica: this.name,
      state: this.state,
      ...(this.replay > 0n ? { replayLsn: lsnText(this.replay) } : {}),
      ...(this.lagBytes !== undefined && this.usable ? { lagBytes: this.lagBytes } : {}),
      ...(this.error ? { error: this.error } : {}),
    };
  }

  /** Closes the pool (a later `reopen()` starts a new one). */
  async close(): Promise<void> {
    if (!this.#initialised) return;
    this.#initialised = false;
    await this.knex.destroy();
  }

  reopen(): void {
    if (this.#initialised) return;
    this.knex.initialize();
    this.#initialised = true;
  }

  #mark(state: ReplicaState, error: string): void {
    this.state = state;
    this.error = error;
    this.lagBytes = undefined;
  }
}
