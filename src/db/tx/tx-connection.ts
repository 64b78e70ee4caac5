import type { Knex } from 'knex';
import type { Logger } from '../../observability/logger.js';
import { sendCancelRequest } from '../connection/cancel-request.js';
import { classifyError, errorChain, isClientSideTimeout } from '../errors/classify-error.js';
import {
  cancelTargetOf,
  clearTransactionMark,
  interceptStatements,
  isBroken,
  type StatementInterceptor,
  markBroken,
  type DriverConnection,
  type RawResult,
} from '../knex-internals.js';

export type { RawResult } from '../knex-internals.js';

/** Runs one statement on the transaction's connection, bypassing the user-facing checks. */
export type InnerQuery = (sql: string, bindings?: unknown[]) => Promise<RawResult>;

const noop = (): void => {};

/** Whether a transaction's statements may run now. */
export interface StatementGate {
  /** The error to reject a statement with, or undefined to let it run. */
  refusal(): Error | undefined;
}

/** One transaction's (or savepoint's) statement checks, as one object rather than a closure each. */
class Watcher implements StatementInterceptor {
  readonly #gate: StatementGate;
  readonly #onStatement: (() => void) | undefined;
  readonly #statements: StatementSet;
  readonly #also: StatementSet | undefined;

  constructor(
    gate: StatementGate,
    onStatement: (() => void) | undefined,
    statements: StatementSet,
    also?: StatementSet,
  ) {
    this.#gate = gate;
    this.#onStatement = onStatement;
    this.#statements = statements;
    this.#also = also;
  }

  before(): Error | undefined {
    const refused = this.#gate.refusal();
    if (refused === undefined && this.#onStatement !== undefined) this.#onStatement();
    return refused;
  }

  track<T>(p: Promise<T>): Promise<T> {
    this.#statements.track(p);
    this.#also?.track(p);
    return p;
  }
}

/** Statements in flight and the first failure among them (a transaction's, or a savepoint's own). */
export class StatementSet {
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #observer: { statementFailed(err: unknown): void } | undefined;
  #firstError: unknown;

  constructor(observer?: { statementFailed(err: unknown): void }) {
    this.#observer = observer;
  }

  /** The first statement failure seen, if any. */
  get firstError(): unknown {
    return this.#firstError;
  }

  get inflight(): number {
    return this.#inflight.size;
  }

  track(p: Promise<unknown>): void {
    this.#inflight.add(p);
    p.then(
      () => this.#inflight.delete(p),
      (err: unknown) => {
        this.#inflight.delete(p);
        this.#firstError ??= err;
        this.#observer?.statementFailed(err);
      },
    );
  }

  /** Resolves when every statement in flight has settled (their outcome is the caller's). */
  async settled(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
  }
}

/**
 * The pool connection one top-level transaction holds, from checkout to its return, and the
 * statements sent on it:
 *
 * - Statements of the callback (and of its savepoints) are refused once the transaction may
 *   no longer be used (after the end, after a timeout: drizzle#6083, prisma#17245); those in
 *   flight are counted, so COMMIT waits for a floating query and a rollback can cancel a
 *   running one; the first failure is kept (the `cause` when COMMIT answers ROLLBACK).
 * - `lost` says the connection broke (an error or end event, a terminated backend, a
 *   restart, a statement failing with a connection error). From then on, every statement
 *   failure is that loss, however knex or pg words it (knex marks its transaction complete
 *   and answers "Transaction query already complete"); `cameFromStatement` tells those
 *   from an error the callback made itself, which stays the callback's.
 * - It goes back to the pool only as healthy (its transaction state known to be idle);
 *   otherwise it is destroyed (pg#3399, drizzle#6114): closed now, and marked broken so
 *   knex's pool `validate` drops it instead of handing it out again.
 */
export class TxConnection {
  readonly raw: DriverConnection;
  readonly #release: (connection: unknown) => Promise<unknown>;
  readonly #logger: Logger;
  readonly #statements = new StatementSet(this);
  #lostBy: unknown;
  /** Errors statements on this connection rejected with (to tell them from the callback's own); rarely any. */
  #statementErrors: unknown[] | undefined;
  #serverMayBeBusy = false;
  #released = false;

  constructor(raw: DriverConnection, release: (connection: unknown) => Promise<unknown>, logger: Logger) {
    this.raw = raw;
    this.#release = release;
    this.#logger = logger;
  }

  /**
   * Routes `trx`'s statements through this connection's checks.
   * @param gate - says whether a statement may run now (`refusal()`: the error, or undefined).
   * @param onStatement - called before each statement let through (the `onStatement` hooks).
   * @param also - a savepoint's own statement set, tracked as well.
   * @returns the runner of internal statements (timeouts, xid), unchecked and uncounted.
   */
  watch(
    trx: Knex.Transaction,
    gate: StatementGate,
    onStatement?: () => void,
    also?: StatementSet,
  ): InnerQuery {
    return interceptStatements(trx, this.raw, new Watcher(gate, onStatement, this.#statements, also));
  }

  /** True once the connection broke, by an event on the client or a connection error on a statement. */
  get lost(): boolean {
    return this.#lostBy !== undefined || isBroken(this.raw);
  }

  /**
   * True when `err` (or what it wraps: objection keeps the driver error as `nativeError`) is a
   * statement failure seen on this connection, not an error of the callback's own making.
   */
  cameFromStatement(err: unknown): boolean {
    const seen = this.#statementErrors;
    return seen !== undefined && errorChain(err).some((e) => seen.includes(e));
  }

  /** @internal Called by the statement set when a statement on this connection fails. */
  statementFailed(err: unknown): void {
    (this.#statementErrors ??= []).push(err);
    if (isClientSideTimeout(err)) this.#serverMayBeBusy = true;
    else if (classifyError(err).kind === 'connection') this.#lostBy ??= err;
  }

  /** Records that the connection is gone although no event said so yet (a failed BEGIN). */
  markLost(): void {
    this.#lostBy ??= 'lost';
  }

  /** The first statement failure seen, if any. */
  get firstError(): unknown {
    return this.#statements.firstError;
  }

  /** The backend's process id (for pg_terminate_backend), if known. */
  get processID(): number | undefined {
    return this.raw.processID ?? undefined;
  }

  /**
   * True when a statement may still be running on the server although its promise settled
   * (pg's client-side `query_timeout` gave up on it), or one is still in flight.
   */
  get serverMayBeBusy(): boolean {
    return this.#serverMayBeBusy || this.#statements.inflight > 0;
  }

  /** Resolves when every statement in flight has settled (their outcome is the caller's). */
  settled(): Promise<void> {
    return this.#statements.settled();
  }

  /** Statements still in flight (COMMIT waits for them only when there are some). */
  get inflight(): number {
    return this.#statements.inflight;
  }

  /**
   * Cancels the statement running on this connection, out of band (CancelRequest on a new
   * socket). The caller must send nothing else until this resolves, so the cancel cannot hit a
   * later statement.
   * @returns false when the cancel could not be delivered (the connection's state is then unknown).
   */
  async cancelRunning(timeoutMs: number): Promise<boolean> {
    const target = cancelTargetOf(this.raw);
    if (!target) return false;
    try {
      await sendCancelRequest(target, timeoutMs);
      return true;
    } catch (err) {
      this.#logger.warn({ err: { message: (err as Error).message } }, 'cancel request failed');
      return false;
    }
  }

  /** Returns the connection to the pool, destroying it unless `healthy`. Idempotent; never throws. */
  release(healthy: boolean, reason: string): void {
    if (this.#released) return;
    this.#released = true;
    const conn = this.raw;
    clearTransactionMark(conn);
    if (!healthy || this.lost) {
      markBroken(conn, `destroyed by TxManager: ${reason}`);
      conn.end().catch(noop);
      this.#logger.debug({ reason }, 'transaction connection destroyed');
    }
    this.#release(conn).catch(noop);
  }
}
