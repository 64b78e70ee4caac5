import type { Knex } from 'knex';
import type { ErrorClassification } from '../errors/classify-error.js';
import { ConnectionError, ReadOnlyTransactionError } from '../errors/errors.js';

/** A tarn free-list entry, as tarn's reaper handles it (`free` and `_destroy` are tarn internals). */
type FreeResource = { resource: { __knex__disposed?: unknown }; settle(): void };
type TarnInternals = {
  free?: FreeResource[];
  _destroy?(resource: unknown): Promise<unknown>;
};

/**
 * Evicts every idle connection of knex's pool after a failover (pg#2650): they were opened
 * to the same server as the connection that just answered read-only (25006) or refused
 * (57P03), so they are stale too. Each is marked `__knex__disposed` first, so that knex's pool
 * `validate` drops it should it still be handed out, then taken out of tarn's free list and
 * destroyed the way tarn's own idle reaper does it (settle, then `_destroy`, which fires the
 * pool's `destroyRequest` event and closes the socket).
 *
 * The next acquire opens a new connection, and a new connection resolves the host name again
 * (pg connects through `net.connect`, which asks DNS every time; Node caches nothing), so a
 * DNS name or virtual IP that now points at the new primary is followed without a restart.
 *
 * Connections checked out at this moment are not touched: their own transactions meet the
 * failover (and evict again) or finish; pg_stat_activity shows them until then.
 * Synchronous, so no acquire can pop the free list half-way. Never throws.
 *
 * @returns how many idle connections were evicted.
 */
export function evictIdleConnections(knex: Knex, reason: string): number {
  const pool = (knex.client as { pool?: TarnInternals } | undefined)?.pool;
  const free = pool?.free;
  if (!pool || !Array.isArray(free)) return 0;
  for (const entry of free) entry.resource.__knex__disposed ??= `evicted: ${reason}`;
  // Without tarn's destroy (another pool version), the marks alone make validate drop them.
  if (typeof pool._destroy !== 'function') return free.length;
  const evicted = free.splice(0);
  for (const entry of evicted) {
    entry.settle();
    pool._destroy(entry.resource).catch(() => {});
  }
  return evicted.length;
}

/**
 * What the caller of a transaction gets when a failover (`classifyTxError` kind 'failover')
 * outlasted the retries, or retry was off: never the raw driver error, never a success.
 * 57P03 gives `ConnectionError` (the server refused connections), anything else (25006)
 * `ReadOnlyTransactionError`, each with a message that names the failover and the SQLSTATE.
 * The driver error stays the `cause`, so `sqlStateOf()` and `classifyError()` still read it.
 */
export function failoverError(err: unknown, { sqlState }: ErrorClassification, attempts: number): Error {
  const tries = attempts > 1 ? ` (${attempts} attempts)` : '';
  if (sqlState === '57P03')
    return new ConnectionError(
      `The server refused new connections (SQLSTATE 57P03: starting up, shutting down or in recovery)${tries}; a failover may be in progress.`,
      {
        attempts,
        hint: 'wait for the failover to finish; check that the host points at the new primary',
        cause: err,
      },
    );
  return new ReadOnlyTransactionError(
    `The session was read-only although a read-write transaction was asked for (SQLSTATE 25006)${tries}: the server is a standby or the connection predates a failover. Nothing was written.`,
    { cause: err },
  );
}
