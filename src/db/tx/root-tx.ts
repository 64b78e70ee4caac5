import type { Knex } from 'knex';
import type { Logger } from '../../observability/logger.js';
import type { IsolationLevel } from '../database.js';
import { classifyError, classifyTxError, isClientSideTimeout, sqlStateOf } from '../errors/classify-error.js';
import {
  ConnectionError,
  TransactionAbortedError,
  TransactionStateError,
  TransactionTimeoutError,
} from '../errors/errors.js';
import {
  beginTransactionWith,
  evictIdleConnections,
  openUnpooledConnection,
  releasePooled,
  replaceNextCommit,
  transactionEnders,
  type BeginExtras,
  type DriverConnection,
  type TransactionEnders,
} from '../knex-internals.js';
import {
  NOTHING_WRITTEN,
  recordXid,
  resolveLostCommit,
  XID_AT_BEGIN,
  xidOf,
  type CommitOutcome,
  type LookupConnection,
  type RecordedXid,
} from './lost-commit.js';
import type { SavepointTx } from './savepoint-tx.js';
import { TxConnection, type InnerQuery, type RawResult } from './tx-connection.js';
import { markTransactionEnded, setTransactionHandle, transactionHandle } from './tx-context.js';
import { withTimeout } from '../with-timeout.js';
import { TxDeadline } from './tx-deadline.js';
import type { TxTraits } from './tx-options.js';
import { setConfig, type TxSettings } from './tx-settings.js';

/** What every top-level transaction of one manager shares (built once per knex instance). */
export interface RootTxDeps {
  knex: Knex;
  logger: Logger;
  /** Checks a connection out of the pool (past the foreign-connection guard). */
  acquire(): Promise<unknown>;
  /** Bound on learning a lost COMMIT's outcome, ms. */
  commitLookupTimeoutMs: number | undefined;
  /** Told what the lookup of a lost COMMIT found (tracing's event); undefined: nobody listens. */
  onCommitLookup?: ((outcome: CommitOutcome) => void) | undefined;
  /** Called once the transaction has begun (counts it, installs the foreign-connection guard). */
  onBegun(tx: RootTx): void;
  /**
   * Record the xid before COMMIT (one round trip per read-write transaction) so that a COMMIT
   * whose connection is lost is resolved with pg_xact_status. False: no xid round trip, and a
   * lost COMMIT is a CommitUnknownError (retried only with `idempotent`).
   */
  resolveLostCommit: boolean;
  /**
   * Called after a read-write transaction committed, on its connection, before the connection
   * is released and before the caller hears of the commit (the commit position for
   * read-your-writes, only when replicas are configured). Must not throw.
   */
  afterCommit?: ((connection: DriverConnection) => Promise<void>) | undefined;
}

/** The settings of one top-level transaction. */
export interface RootTxSettings {
  isolationLevel: IsolationLevel | undefined;
  readOnly: boolean;
  deferrable: boolean;
  /** The caller's timeout, for messages. */
  timeoutMs: number | undefined;
  /** Absolute deadline on the performance.now() clock; undefined = none. */
  deadline: number | undefined;
  /** Called before each statement of the callback (and of its savepoints); undefined = none. */
  onStatement?: (() => void) | undefined;
  /** Session settings for this transaction (`set_config(name, value, true)` with BEGIN). */
  settings?: TxSettings | undefined;
}

/** Bound on an out-of-band cancel (connect + answer), ms. */
const CANCEL_TIMEOUT_MS = 500;
/** Bound on ROLLBACK before the connection is given up as unknown and destroyed, ms. */
const ROLLBACK_TIMEOUT_MS = 2_000;
/** How long past the deadline a COMMIT may take before it is treated as lost, ms. */
const COMMIT_GRACE_MS = 200;
/** statement_timeout runs this much past the deadline: the client-side cancel normally wins, the server's is the backstop. */
const STATEMENT_SLACK_MS = 100;
/** idle_in_transaction_session_timeout runs this much past the deadline: the client-side rollback should win. */
const IDLE_SLACK_MS = 1_000;

/** The manager's handle behind a transaction object, if TxManager started it. */
export function handleOf(trx: Knex.Transaction): RootTx | SavepointTx | undefined {
  return transactionHandle(trx) as RootTx | SavepointTx | undefined;
}

/** @internal Used by SavepointTx to register itself. */
export function registerHandle(trx: Knex.Transaction, handle: RootTx | SavepointTx): void {
  setTransactionHandle(trx, handle);
}

const noop = (): void => {};

/**
 * One top-level transaction on one pool connection that this handle owns from acquire to
 * release (drizzle#6023: acquire, BEGIN, body, COMMIT/ROLLBACK all end in one disposal).
 * knex issues BEGIN (with isolation level / READ ONLY), COMMIT and ROLLBACK; the handle adds:
 *
 * - one deadline over acquire, setup, statements and COMMIT, with a transaction-local
 *   `statement_timeout` and `idle_in_transaction_session_timeout` from the time left;
 * - on expiry, a statement still running is cancelled on the server (CancelRequest), then
 *   ROLLBACK; the handle refuses any further statement (knex#4415, pg#1954, prisma#17245);
 * - COMMIT owned: the xid is recorded first (read-write only), a failure at COMMIT rejects
 *   (knex#3370), a ROLLBACK tag rejects (pgx's ErrTxCommitRollback), a lost COMMIT is
 *   resolved with pg_xact_status;
 * - a lost connection is a lost connection whatever the callback sees (`connectionLost`);
 * - the connection goes back to the pool only when its state is known to be idle; otherwise it
 *   is destroyed (pg#3399, drizzle#6114; a connection that went back mid-transaction would
 *   commit the next borrower's rows together with the ones its caller was told had failed);
 * - a failover (`classifyTxError` kind 'failover': 25006 in a transaction not declared
 *   read-only, or 57P03) destroys the connection without ROLLBACK and evicts the pool's idle
 *   connections (pg#2650); the manager's retry then starts on a new connection.
 */
export class RootTx {
  readonly #deps: RootTxDeps;
  readonly #settings: RootTxSettings;
  readonly #deadline: TxDeadline;
  #state: 'starting' | 'active' | 'committing' | 'rollingBack' | 'ended' = 'starting';
  #conn: TxConnection | undefined;
  #trx: Knex.Transaction | undefined;
  #inner: InnerQuery | undefined;
  /** knex's own COMMIT/ROLLBACK, kept: the callback's `trx.commit`/`rollback` are replaced (refused, or beginTx's). */
  #ends: TransactionEnders | undefined;
  #rollingBack: Promise<void> | undefined;
  #isolation: IsolationLevel | undefined;
  /** The xid taken with BEGIN (read-write with lost-COMMIT resolution); undefined: not taken. */
  #xid: RecordedXid | undefined;

  private constructor(deps: RootTxDeps, settings: RootTxSettings) {
    this.#deps = deps;
    this.#settings = settings;
    this.#deadline =
      settings.deadline === undefined
        ? TxDeadline.NONE
        : new TxDeadline(settings.deadline, () => this.#onExpire());
  }

  /**
   * Acquires a connection and begins the transaction.
   * @throws TransactionTimeoutError when the deadline passes first; the acquire or BEGIN
   *   error otherwise (the connection, if any, is released or destroyed).
   */
  static async begin(deps: RootTxDeps, settings: RootTxSettings): Promise<RootTx> {
    const tx = new RootTx(deps, settings);
    try {
      const { knex, logger } = tx.#deps;
      const raw = (await (tx.#deadline.at === undefined
        ? tx.#deps.acquire()
        : tx.#race(tx.#deps.acquire(), (late) => void releasePooled(knex, late)))) as DriverConnection;
      const conn = (tx.#conn = new TxConnection(raw, (c) => releasePooled(knex, c), logger));
      const { isolationLevel, readOnly } = tx.#settings;
      const config: Knex.TransactionConfig & { connection: object } = { connection: raw };
      if (isolationLevel) config.isolationLevel = isolationLevel;
      if (readOnly) config.readOnly = true;
      const trx = await tx.#race(beginTransactionWith(knex, config, tx.#beginExtras()));
      tx.#trx = trx;
      trx.executionPromise?.catch(noop);
      // knex swallows a failed BEGIN: the transaction object arrives already complete, its
      // executionPromise rejected with BEGIN's error (on a connection that died in the pool,
      // a terminated backend), and every statement would answer "Transaction query already
      // complete". BEGIN's own error is what happened.
      if (trx.isCompleted()) {
        conn.markLost();
        await trx.executionPromise;
        throw new TransactionStateError('BEGIN failed.');
      }
      tx.#ends = transactionEnders(trx);
      tx.#inner = conn.watch(trx, tx, tx.#settings.onStatement);
      setTransactionHandle(trx, tx);
      if (tx.#deadline.expired) throw tx.timeoutError();
      tx.#state = 'active';
      // Counted and guarded only once it has begun.
      deps.onBegun(tx);
    } catch (err) {
      if (tx.#trx) await tx.rollback(err);
      else {
        tx.#dispose(false, 'BEGIN failed');
        tx.#evictOnFailover(err);
      }
      throw tx.#deadline.expired ? tx.timeoutError(err) : err;
    }
    return tx;
  }

  /**
   * What travels with BEGIN in its message: SET TRANSACTION DEFERRABLE (knex's BEGIN has no
   * DEFERRABLE, and it must precede any query), then one SELECT with the xid (read-write with
   * lost-COMMIT resolution), the transaction-local timeouts from the time left, and the
   * caller's `settings`, every value an escaped literal. Undefined when there is nothing.
   */
  #beginExtras(): BeginExtras | undefined {
    const { deferrable, readOnly, settings } = this.#settings;
    const select: string[] = [];
    const wantXid = !readOnly && this.#deps.resolveLostCommit;
    if (wantXid) select.push(XID_AT_BEGIN);
    const left = this.#deadline.remainingMs();
    // Transaction-local (set_config(..., true)): nothing stays on the pooled session.
    if (left !== undefined)
      select.push(
        setConfig('statement_timeout', `${left + STATEMENT_SLACK_MS}ms`),
        setConfig('idle_in_transaction_session_timeout', `${left + IDLE_SLACK_MS}ms`),
      );
    for (const [name, value] of settings ?? []) select.push(setConfig(name, value));
    const statements = deferrable ? ['SET TRANSACTION DEFERRABLE'] : [];
    if (select.length > 0) statements.push(`select ${select.join(', ')}`);
    if (statements.length === 0) return undefined;
    return {
      sql: statements.join('; '),
      answer: wantXid
        ? (results) => {
            this.#xid = xidOf(results.at(-1));
          }
        : undefined,
    };
  }

  /** The isolation level BEGIN asked for (undefined: the server's default). */
  get isolationLevel(): IsolationLevel | undefined {
    return this.#settings.isolationLevel;
  }

  /** The knex transaction object the callback receives. */
  get trx(): Knex.Transaction {
    if (!this.#trx) throw new TransactionStateError('The transaction has not begun.');
    return this.#trx;
  }

  /** What runs before each callback statement (the `onStatement` hooks); savepoints share it. */
  get onStatement(): (() => void) | undefined {
    return this.#settings.onStatement;
  }

  /** This handle (the root of its own savepoints). */
  get root(): RootTx {
    return this;
  }

  /** Runs an internal statement on the connection (not refused, not counted). */
  get inner(): InnerQuery {
    if (!this.#inner) throw new TransactionStateError('The transaction has not begun.');
    return this.#inner;
  }

  /** The connection this transaction holds. */
  get connection(): TxConnection | undefined {
    return this.#conn;
  }

  /**
   * True once the connection broke before COMMIT was sent: whatever the callback threw after
   * that is the loss (nothing was committed, so the transaction may be re-run).
   */
  get connectionLost(): boolean {
    return this.#conn?.lost ?? false;
  }

  /**
   * True when the callback's `err` is the lost connection: the connection broke, and `err`
   * came from a statement (knex's "Transaction query already complete", pg's "Client was
   * closed"...), not from the callback's own code.
   */
  lostConnectionCaused(err: unknown): boolean {
    const conn = this.#conn;
    return conn !== undefined && conn.lost && conn.cameFromStatement(err);
  }

  /** True while statements may run. */
  get usable(): boolean {
    return this.#state === 'active' && !this.#deadline.expired;
  }

  /** True once the deadline has passed. */
  get expired(): boolean {
    return this.#deadline.expired;
  }

  /** Resolves at the deadline; never without one. */
  get expiry(): Promise<void> {
    return this.#deadline.expiry;
  }

  /** True when the transaction has a deadline (a timeout was set). */
  get hasDeadline(): boolean {
    return this.#deadline.at !== undefined;
  }

  /** The error a caller gets for this transaction's deadline. */
  timeoutError(cause?: unknown): TransactionTimeoutError {
    return new TransactionTimeoutError(
      this.#settings.timeoutMs ?? 0,
      cause === undefined ? undefined : { cause },
    );
  }

  /** What this transaction guarantees, for a call that wants to join it. */
  async traits(): Promise<TxTraits> {
    if (!this.#isolation) {
      const explicit = this.#settings.isolationLevel;
      const res = explicit
        ? undefined
        : await this.inner("select current_setting('transaction_isolation') as level");
      this.#isolation = explicit ?? (res?.response?.rows?.[0]?.level as IsolationLevel);
    }
    const { readOnly, deferrable, deadline } = this.#settings;
    return { isolationLevel: this.#isolation, readOnly, deferrable, deadline };
  }

  /**
   * Commits. Waits for statements still in flight, records the xid (read-write only), sends
   * COMMIT through knex and reads both its error (knex#3370) and its command tag.
   * @throws the COMMIT's error (40001, a deferred 23xxx, knex#6141: the transaction is
   *   rolled back); TransactionAbortedError when COMMIT answered ROLLBACK; CommitAbortedError
   *   when the connection was lost during COMMIT and the server says it aborted;
   *   CommitUnknownError when that cannot be learned; TransactionTimeoutError at the deadline.
   */
  async commit(): Promise<void> {
    if (this.#deadline.expired) throw this.timeoutError();
    if (!this.usable) throw this.refusal() ?? new TransactionStateError('The transaction is not active.');
    this.#state = 'committing';
    const conn = this.#conn!;
    // undefined: not recorded (resolveLostCommit off), so a lost COMMIT cannot be resolved.
    let recorded: RecordedXid | undefined;
    try {
      if (conn.inflight > 0) await this.#race(conn.settled());
      // Known lost before COMMIT is sent: nothing can have committed, no lookup needed.
      if (conn.lost)
        throw new ConnectionError('The connection was lost before COMMIT was sent; nothing was committed.', {
          cause: conn.firstError,
        });
      if (this.#settings.readOnly) recorded = NOTHING_WRITTEN;
      else if (this.#deps.resolveLostCommit)
        recorded = this.#xid ?? (await this.#race(recordXid(this.inner)));
    } catch (err) {
      await this.rollback(err);
      throw this.#deadline.expired ? this.timeoutError(err) : err;
    }
    let res: RawResult | undefined;
    try {
      const trx = this.trx;
      if (this.#deadline.at === undefined) {
        res = await this.#ends!.commit();
        await trx.executionPromise;
      } else {
        const committing = this.#ends!.commit().then(async (r) => {
          await trx.executionPromise;
          return r;
        });
        res = await this.#deadline.raceWithGrace(committing, COMMIT_GRACE_MS, () => new CommitDeadline());
      }
    } catch (err) {
      if (err instanceof CommitDeadline || conn.lost || classifyError(err).kind === 'connection') {
        this.#dispose(false, 'connection lost during COMMIT');
        return resolveLostCommit(recorded, err instanceof CommitDeadline ? undefined : err, {
          tx: this,
          isolationLevel: this.#settings.isolationLevel,
          // A pg Client, opened the way the pool opens one (TLS, deadline, error listener).
          open: () => openUnpooledConnection(this.#deps.knex) as unknown as Promise<LookupConnection>,
          pid: conn.processID,
          timeoutMs: this.#deps.commitLookupTimeoutMs,
          logger: this.#deps.logger,
          onOutcome: this.#deps.onCommitLookup,
        });
      }
      if (this.#evictOnFailover(err, 'failover at COMMIT')) throw err;
      this.#dispose(true, 'COMMIT failed'); // the server answered: the transaction is over, the session idle
      throw err;
    }
    // A failover error the callback caught (a 25006 on a stale session) leaves the session
    // stale whatever COMMIT answered: destroyed, never pooled again.
    if (!this.#evictOnFailover(conn.firstError, 'failover before COMMIT')) {
      if (this.#deps.afterCommit && !this.#settings.readOnly && res?.response?.command === 'COMMIT')
        await this.#deps.afterCommit(conn.raw);
      this.#dispose(true, 'committed');
    }
    if (res?.response?.command === 'ROLLBACK')
      throw new TransactionAbortedError(
        'COMMIT was answered with ROLLBACK: a statement had failed earlier, so nothing was written.',
        conn.firstError === undefined ? undefined : { cause: conn.firstError },
      );
  }

  /**
   * Ends the transaction with `PREPARE TRANSACTION 'gid'` instead of COMMIT (two-phase commit):
   * the work is kept on the server, its locks held, until `COMMIT PREPARED` / `ROLLBACK PREPARED`
   * from any session; this session is idle again and goes back to the pool. Waits for
   * statements in flight first, as `commit()` does. knex sends the statement as its own end
   * (`replaceNextCommit`), so the transaction object ends as after a COMMIT. `gid` must be a
   * safe literal (the caller builds it; PREPARE TRANSACTION takes no bind parameter).
   * @throws TransactionAbortedError when PREPARE answered ROLLBACK (a statement had failed:
   *   nothing is prepared); the PREPARE error (the transaction is rolled back); the connection
   *   error or TransactionTimeoutError when the outcome is unknown (the connection is destroyed;
   *   the transaction may or may not be prepared, the caller must resolve `gid`).
   */
  async prepare(gid: string): Promise<void> {
    if (this.#deadline.expired) throw this.timeoutError();
    if (!this.usable) throw this.refusal() ?? new TransactionStateError('The transaction is not active.');
    this.#state = 'committing';
    const conn = this.#conn!;
    try {
      if (conn.inflight > 0) await this.#race(conn.settled());
    } catch (err) {
      await this.rollback(err);
      throw this.#deadline.expired ? this.timeoutError(err) : err;
    }
    let res: RawResult | undefined;
    try {
      const trx = this.trx;
      replaceNextCommit(trx, `PREPARE TRANSACTION '${gid}'`);
      const preparing = this.#ends!.commit().then(async (r) => {
        await trx.executionPromise;
        return r;
      });
      res = await (this.#deadline.at === undefined
        ? preparing
        : this.#deadline.raceWithGrace(preparing, COMMIT_GRACE_MS, () => this.timeoutError()));
    } catch (err) {
      const unknown = this.#deadline.expired || conn.lost || classifyError(err).kind === 'connection';
      // Pooled again only when the server answered (a SQLSTATE): PREPARE failing ends the
      // transaction there. An error before it was sent leaves the session inside it: destroyed.
      const answered = !unknown && sqlStateOf(err) !== undefined;
      this.#dispose(answered, unknown ? 'connection lost during PREPARE' : 'PREPARE failed');
      throw err;
    }
    this.#dispose(!conn.lost, 'prepared');
    if (res?.response?.command === 'ROLLBACK')
      throw new TransactionAbortedError(
        'PREPARE TRANSACTION was answered with ROLLBACK: a statement had failed earlier, so nothing was prepared.',
        conn.firstError === undefined ? undefined : { cause: conn.firstError },
      );
  }

  /**
   * Rolls back and releases the connection, or destroys it when its state is unknown (lost,
   * a failed cancel, a failed or slow ROLLBACK). A statement still running (the deadline, a
   * client-side timeout, a floating query) is cancelled on the server first. Never throws;
   * idempotent.
   */
  rollback(cause?: unknown): Promise<void> {
    if (this.#state === 'ended') return Promise.resolve();
    this.#rollingBack ??= this.#rollback(cause);
    return this.#rollingBack;
  }

  async #rollback(cause: unknown): Promise<void> {
    this.#state = 'rollingBack';
    if (this.#trx) markTransactionEnded(this.#trx);
    const conn = this.#conn;
    // The failed statement's error, or the first one the callback swallowed (beginTx's rollback() has no cause).
    if (this.#evictOnFailover(cause, 'failover') || this.#evictOnFailover(conn?.firstError, 'failover'))
      return;
    if (!conn || !this.#trx || conn.lost || classifyError(cause).kind === 'connection')
      return this.#dispose(false, 'connection lost');
    if (conn.serverMayBeBusy || isClientSideTimeout(cause)) {
      if (!(await conn.cancelRunning(CANCEL_TIMEOUT_MS))) return this.#dispose(false, 'cancel failed');
    }
    let healthy = false;
    try {
      const res = await withTimeout(this.#ends!.rollback(cause), ROLLBACK_TIMEOUT_MS);
      healthy = res?.response?.command === 'ROLLBACK';
    } catch {
      // ROLLBACK failed or hung: the connection's state is unknown (healthy stays false).
    }
    this.#dispose(healthy, 'ROLLBACK failed or timed out');
  }

  #dispose(healthy: boolean, reason: string): void {
    this.#deadline.clear();
    this.#state = 'ended';
    if (this.#trx) markTransactionEnded(this.#trx);
    // Kept after release: a lost COMMIT's lookup still needs the backend's pid.
    this.#conn?.release(healthy, reason);
  }

  /**
   * When `err` is a failover for this transaction: destroys its connection (no ROLLBACK: the
   * session is stale, closing it ends the transaction on the server) unless already released,
   * and evicts the pool's idle connections. Returns whether it was one.
   */
  #evictOnFailover(err: unknown, reason = 'failover'): boolean {
    if (err === undefined) return false;
    const { kind, sqlState } = classifyTxError(err, { declaredReadOnly: this.#settings.readOnly });
    if (kind !== 'failover') return false;
    if (this.#state !== 'ended') this.#dispose(false, reason);
    const evicted = evictIdleConnections(this.#deps.knex, `${reason} (SQLSTATE ${sqlState ?? '?'})`);
    this.#deps.logger.warn(
      { sqlState, evicted, pid: this.#conn?.processID },
      'failover suspected (the session is read-only or the server refuses connections): connection destroyed, idle connections evicted',
    );
    return true;
  }

  #onExpire(): void {
    if (this.#trx && this.#state !== 'committing') markTransactionEnded(this.#trx);
    // Nobody may be waiting (an explicit beginTx handle): roll back now, not when the caller returns.
    if (this.#state === 'active') void this.rollback(this.timeoutError());
  }

  /** Why a statement may not run now (timed out, ended), or undefined: the connection's statement gate. */
  refusal(): Error | undefined {
    if (this.#deadline.expired && this.#state !== 'committing')
      return new TransactionStateError(
        'The transaction timed out and was rolled back; this statement was not sent.',
        { cause: this.timeoutError() },
      );
    if (this.#state === 'starting' || this.#state === 'active' || this.#state === 'committing')
      return undefined;
    return new TransactionStateError('The transaction has already ended; this statement was not sent.');
  }

  #race<T>(p: Promise<T>, onLate?: (value: T) => void): Promise<T> {
    if (this.#deadline.at === undefined) return p;
    return this.#deadline.race(p, () => this.timeoutError(), onLate);
  }
}

/** COMMIT did not answer by the deadline (plus grace). */
class CommitDeadline extends Error {}
