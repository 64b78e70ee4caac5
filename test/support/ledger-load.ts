import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type { Database, TxOptions } from '../../src/db/database.js';
import type { EmbeddedServer } from '../../src/db/embedded/embedded-server.js';
import * as productErrors from '../../src/db/errors/errors.js';
import type { LogLine } from './capture-logger.js';
import { queryOnce } from './query-once.js';
import { randomTransfer, runTransfer, type TransferShape, type TransferTrace } from './transfer-ledger.js';

/** Every error class `src/db/errors/errors.ts` exports (its own and objection's it re-exports). */
const PRODUCT_ERROR_CLASSES: ReadonlyArray<abstract new (...args: never[]) => Error> = Object.values(
  productErrors,
).filter((v) => typeof v === 'function');

/** True when `err` is one of the data layer's error classes: what a caller may be given. */
export const isProductError = (err: unknown): boolean =>
  PRODUCT_ERROR_CLASSES.some((cls) => err instanceof cls);
export const className = (err: unknown): string => (err instanceof Error ? err.constructor.name : typeof err);
export const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** `n` of each key, as `key x n` joined; `-` when empty. */
export function tally(keys: string[]): string {
  const counts = new Map<string, number>();
  for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${k} x${n}`).join(', ') || '-';
}

/**
 * The wrong answer a ledger load must never give: a caller told its transfer failed although
 * the transfer is in the ledger. Every error but `CommitUnknownError` tells the caller "not
 * done" (a lost COMMIT is looked up: committed is success, aborted is re-run or reported
 * aborted), so its transfer must not be there; `CommitUnknownError` alone says "may or may not
 * be done" (the lookup could not be made), so its transfer may be there or not. Returns the
 * errors that broke the rule, whatever their class.
 */
export function failedButWritten<R extends Received>(received: R[], ledger: ReadonlySet<string>): R[] {
  return received.filter(
    (r) => ledger.has(r.transferId) && !(r.error instanceof productErrors.CommitUnknownError),
  );
}

/** What `pg_xact_status` said of the COMMITs whose connection was lost, one count per outcome. */
export interface CommitLookups {
  committed: number;
  aborted: number;
  unknown: number;
}

/**
 * Counts the manager's lost-COMMIT lookups in its captured log: each one is a warn line with
 * the looked-up `xid` and its `outcome` (committed, aborted or unknown).
 */
export function commitLookups(lines: readonly LogLine[]): CommitLookups {
  const counts: CommitLookups = { committed: 0, aborted: 0, unknown: 0 };
  for (const line of lines) {
    const outcome = line.outcome;
    if (
      typeof line.xid === 'string' &&
      (outcome === 'committed' || outcome === 'aborted' || outcome === 'unknown')
    )
      counts[outcome]++;
  }
  return counts;
}

/** An error a caller received, with what its transfer's callback had got to. */
export interface Received {
  error: unknown;
  transferId: string;
  worker: number;
  trace: TransferTrace;
  /** When the caller got it (performance.now()). */
  at: number;
}

/** What the callers of one load saw. */
export interface LoadResult {
  /** Acknowledged transfers, with when withTransaction was called and resolved (performance.now()). */
  acked: Array<{ id: string; startedAt: number; at: number }>;
  received: Received[];
}

export interface LedgerLoadOptions {
  /** Names the load in the straggler error. */
  name: string;
  workers: number;
  /** Workers stop starting transfers once this is true. */
  stopped: () => boolean;
  txOptions: TxOptions;
  /** Transfers between accounts 1..accounts; default all of them. */
  accounts?: number;
  shape?: TransferShape;
  /** Bound on each worker's loop, whatever the clock says; default 2000. */
  maxPerWorker?: number;
  /** The load fails when a worker is still inside withTransaction this long after the stop, ms; default 10 s. */
  stragglerMs?: number;
  /** A worker that got an error waits this long before its next transfer, ms; default 20. */
  errorPauseMs?: number;
}

/**
 * Runs `workers` loops of ledger transfers through `db.withTransaction` until `stopped()`,
 * recording every acknowledged id and every error a caller received. Rejects when a worker is
 * still inside withTransaction `stragglerMs` after the stop (a hang is a finding, not a wait).
 */
export async function runLedgerLoad(db: Database, opts: LedgerLoadOptions): Promise<LoadResult> {
  const { workers, stopped, maxPerWorker = 2_000, stragglerMs = 10_000, errorPauseMs = 20 } = opts;
  const result: LoadResult = { acked: [], received: [] };
  let stoppedAt: number | undefined;
  const loops = Array.from({ length: workers }, async (_, worker) => {
    for (let i = 0; i < maxPerWorker && !stopped(); i++) {
      const transfer = randomTransfer(opts.accounts);
      const trace: TransferTrace = { attempts: 0, step: 'begin' };
      const startedAt = performance.now();
      try {
        await runTransfer(db, transfer, opts.txOptions, trace, opts.shape);
        result.acked.push({ id: transfer.id, startedAt, at: performance.now() });
      } catch (error) {
        result.received.push({ error, transferId: transfer.id, worker, trace, at: performance.now() });
        await delay(errorPauseMs); // a caller that got an error does not hammer a server that is down
      }
    }
    stoppedAt ??= Date.now();
  });
  let watchdog: NodeJS.Timeout | undefined;
  const stragglers = new Promise<never>((_, reject) => {
    const check = (): void => {
      if (stoppedAt !== undefined && Date.now() - stoppedAt > stragglerMs)
        reject(
          new Error(
            `${opts.name}: a worker is still inside withTransaction ${stragglerMs} ms after the stop`,
          ),
        );
      else watchdog = setTimeout(check, 200);
    };
    check();
  });
  try {
    await Promise.race([Promise.all(loops), stragglers]);
  } finally {
    clearTimeout(watchdog);
  }
  return result;
}

/** Backends of `database` left 'idle in transaction' (or aborted), seen from `adminUrl`. */
export async function idleInTransaction(
  adminUrl: string,
  database: string,
): Promise<Array<{ pid: number; state: string }>> {
  const { rows } = await queryOnce<{ pid: number; state: string }>(
    adminUrl,
    "select pid, state from pg_stat_activity where datname = $1 and state like 'idle in transaction%'",
    [database],
  );
  return rows;
}

/**
 * Starts a stopped server on its port again, trying up to 3 times: while it is down, a pool's
 * reconnect attempts take ephemeral ports, and the test port came from that range.
 */
export async function startAgain(server: EmbeddedServer): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await server.start();
    } catch (err) {
      console.log(`      start attempt ${attempt} failed: ${messageOf(err)}`);
      if (attempt === 3) throw err;
      await delay(250);
    }
  }
}
