import type { Knex } from 'knex';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import { retryAfterFailure } from '../tx/tx-runner.js';
import type { Database, IsolationLevel } from '../database.js';
import { classifyError } from '../errors/classify-error.js';
import {
  CommitUnknownError,
  TransactionStateError,
  TwoPhaseAbortedError,
  TwoPhaseIncompleteError,
  TxOptionsError,
} from '../errors/errors.js';
import { translateError } from '../errors/translate-error.js';
import { handleOf, type RootTx } from '../tx/root-tx.js';
import { DecisionLog, type OpenDecision } from './decision-log.js';
import { gidOf, globalIdOf } from './gid.js';
import { assertPreparedTransactionsEnabled, finishPrepared } from './prepared-xacts.js';
import { inDoubtOf, recoverAll, type InDoubtTransaction, type RecoveryResult } from './two-phase-recovery.js';

export type { InDoubtTransaction, RecoveryResult } from './two-phase-recovery.js';

/** Settings of a `TwoPhaseCommit`. */
export interface TwoPhaseCommitOptions {
  logger: Logger;
  /** Where decisions are recorded (its own table); may also be one of the participants. */
  coordinator: Database;
  /** The coordinator's table of decisions, created when missing. Default `pgdl_two_phase_decisions`. */
  decisionTable?: string;
  /**
   * `recover()` rolls back a prepared transaction of ours without a decision record whose
   * coordinator transaction the server can no longer tell about (far older than the clog keeps)
   * once it is this old, ms. Default 60 000. (One whose coordinator transaction aborted is rolled
   * back at once; one whose coordinator is still deciding is never touched.)
   */
  gracePeriodMs?: number;
  /** `COMMIT PREPARED` attempts per participant after the decision, before `TwoPhaseIncompleteError`. Default 4. */
  commitAttempts?: number;
  /** Base delay of the backoff between those attempts, ms (full jitter, capped at 1 s). Default 50. */
  commitRetryBaseMs?: number;
  /**
   * Exports `db_two_phase_in_doubt{decided}` and `db_two_phase_in_doubt_oldest_seconds`, read
   * with `inDoubt()` at each scrape (bounded at 2 s). One `TwoPhaseCommit` per `Metrics`.
   */
  metrics?: Metrics;
}

/** Options of one unit of work, applied to every participant's transaction. */
export interface TwoPhaseRunOptions {
  isolationLevel?: IsolationLevel;
  /** Bounds each participant's transaction up to its PREPARE, ms (as `TxOptions.timeoutMs`). */
  timeoutMs?: number;
}

/** Bound on the finished records one decision statement deletes. */
const MAX_FINISHED_PER_RUN = 100;

const refuseManualEnd = (): Promise<never> =>
  Promise.reject(
    new TransactionStateError(
      'TwoPhaseCommit.run() prepares and commits every participant itself: return to commit, throw to roll back.',
    ),
  );

/**
 * One unit of work across several databases, all committed or none, with PostgreSQL's
 * two-phase commit: a transaction is opened on each participant, `fn` runs, each is ended with
 * `PREPARE TRANSACTION`, the coordinator commits the decision record, then each is finished with
 * `COMMIT PREPARED`. Any failure before the decision rolls every participant back. After the
 * decision the commit is guaranteed: what could not be committed inline (after retries) stays
 * prepared until `recover()` commits it. Participants must be `PostgresDatabase`s (their
 * transactions are TxManager's) whose servers have `max_prepared_transactions` > 0
 * (docs/scale-out.md, "Two-phase commit", has the operational cost).
 *
 * No retry: `fn` runs once per `run()`. Call `recover()` at start (before serving) and whenever
 * `inDoubt()` reports transactions older than you expect.
 *
 * ```ts
 * const tpc = new TwoPhaseCommit({ orders, billing }, { logger, coordinator: orders });
 * await tpc.recover();
 * await tpc.run(async ({ orders, billing }) => {
 *   await orders('orders').insert({ id, total });
 *   await billing('invoices').insert({ order_id: id, total });
 * });
 * ```
 */
export class TwoPhaseCommit {
  readonly #participants: ReadonlyArray<readonly [string, Database]>;
  readonly #logger: Logger;
  readonly #log: DecisionLog;
  readonly #gracePeriodMs: number;
  readonly #commitAttempts: number;
  readonly #commitRetryBaseMs: number;
  #tag: Promise<string> | undefined;
  /** Records of units of work committed everywhere, deleted by the next unit's decision statement. */
  readonly #finished: string[] = [];
  #checked: Promise<unknown> | undefined;

  /** @throws TxOptionsError for no participants or invalid options. */
  constructor(participants: Record<string, Database>, opts: TwoPhaseCommitOptions) {
    this.#participants = Object.entries(participants);
    if (this.#participants.length === 0)
      throw new TxOptionsError('TwoPhaseCommit needs at least one participant.');
    if (!opts?.coordinator) throw new TxOptionsError('TwoPhaseCommit needs a coordinator database.');
    for (const [key, value] of [
      ['gracePeriodMs', opts.gracePeriodMs],
      ['commitAttempts', opts.commitAttempts],
      ['commitRetryBaseMs', opts.commitRetryBaseMs],
    ] as const)
      if (value !== undefined && !(Number.isInteger(value) && value >= (key === 'commitAttempts' ? 1 : 0)))
        throw new TxOptionsError(
          `TwoPhaseCommit: ${key} must be a whole number${key === 'commitAttempts' ? ' >= 1' : ' >= 0'}.`,
        );
    this.#logger = opts.logger.child({ component: 'two-phase-commit' });
    this.#log = new DecisionLog(opts.coordinator, opts.decisionTable);
    this.#gracePeriodMs = opts.gracePeriodMs ?? 60_000;
    this.#commitAttempts = opts.commitAttempts ?? 4;
    this.#commitRetryBaseMs = opts.commitRetryBaseMs ?? 50;
    opts.metrics?.observeInDoubt(() => this.inDoubt());
  }

  /**
   * Runs `fn` with one transaction per participant (by the names given to the constructor)
   * and commits them all, or none.
   * @returns what `fn` returned, once every participant has committed.
   * @throws `fn`'s own error (translated as `withTransaction` does) after every participant
   *   rolled back; PreparedTransactionsDisabledError (first run, before anything is opened);
   *   TwoPhaseAbortedError naming the participant that could not begin or prepare (or the
   *   coordinator) after every participant rolled back; TwoPhaseIncompleteError when the commit
   *   is decided but some participants are not committed yet (`recover()` finishes: do not
   *   re-run); CommitUnknownError when the decision's own COMMIT was lost and its outcome cannot
   *   be learned (`recover()` resolves it either way).
   */
  async run<T>(
    fn: (trx: Record<string, Knex.Transaction>) => Promise<T>,
    opts: TwoPhaseRunOptions = {},
  ): Promise<T> {
    const coordinatorTag = await this.#readyOnce();
    const names = this.#participants.map(([name]) => name);
    const txOptions = { isolationLevel: opts.isolationLevel, timeoutMs: opts.timeoutMs };
    const finished = this.#finished.splice(0, MAX_FINISHED_PER_RUN);
    const opening = await Promise.allSettled([
      this.#log.open(names, finished),
      ...this.#participants.map(async ([name, db]) => beginParticipant(name, await db.beginTx(txOptions))),
    ]);
    const decision = opening[0].status === 'fulfilled' ? opening[0].value : undefined;
    const handles = opening.slice(1).map((o) => (o.status === 'fulfilled' ? (o.value as RootTx) : undefined));
    const failed = opening.findIndex((o) => o.status === 'rejected');
    if (failed >= 0) {
      this.#finished.push(...finished);
      await Promise.all([decision?.trx.rollback(), ...handles.map((h) => h?.rollback())]);
      const cause: unknown = (opening[failed] as PromiseRejectedResult).reason;
      const participant = failed === 0 ? undefined : names[failed - 1];
      throw new TwoPhaseAbortedError(
        `Two-phase commit could not begin on ${participant === undefined ? 'the coordinator' : `participant "${participant}"`}; nothing was written.`,
        { participant, step: 'begin', cause },
      );
    }
    const open = decision!;
    const txs = handles as RootTx[];
    let result: T;
    try {
      try {
        result = await fn(Object.fromEntries(names.map((name, i) => [name, txs[i]!.trx])));
      } catch (err) {
        await Promise.all([open.trx.rollback(), ...txs.map((tx) => tx.rollback(err))]);
        throw translateError(err);
      }
      const gids = names.map((_, i) => gidOf(coordinatorTag, open.xid, i));
      await this.#prepareAll(open, txs, names, gids);
      await this.#decide(open, names, gids, coordinatorTag);
      finished.length = 0; // deleted by the decision just committed
      await this.#commitAll(names, gids, globalIdOf(coordinatorTag, open.xid));
    } finally {
      // Not deleted (no decision committed, or its outcome unknown): the next unit of work tries again.
      this.#finished.push(...finished);
    }
    // Committed everywhere: its record goes with the next unit of work's decision (or recover()).
    this.#finished.push(open.xid);
    return result;
  }

  /**
   * Resolves the in-doubt transactions of ours on every participant: commits those whose
   * decision record exists, rolls back those whose coordinator transaction aborted (or, when
   * the server can no longer tell, that are older than `gracePeriodMs`), leaves those whose
   * coordinator is still deciding, and removes the records of units of work finished
   * everywhere. Idempotent, and safe while other processes run or recover units of work.
   * A participant that cannot be reached is logged and skipped (its records are kept).
   * @returns the gids committed and rolled back by this call.
   */
  async recover(): Promise<RecoveryResult> {
    return recoverAll({
      participants: this.#participants,
      log: this.#log,
      coordinatorTag: await this.#readyOnce(false),
      gracePeriodMs: this.#gracePeriodMs,
      logger: this.#logger,
    });
  }

  /**
   * The prepared transactions of ours on every participant now, oldest first, with their age
   * and whether the commit was decided (what `/health` reports; see `HealthServiceDeps.twoPhase`).
   * @param opts.olderThanMs - only those in doubt for longer than this, ms (default 0: all).
   * @throws the driver's error when a participant or the coordinator cannot be read.
   */
  async inDoubt(opts: { olderThanMs?: number } = {}): Promise<InDoubtTransaction[]> {
    return inDoubtOf({
      participants: this.#participants,
      log: this.#log,
      coordinatorTag: await this.#readyOnce(false),
      olderThanMs: opts.olderThanMs ?? 0,
    });
  }

  /** Once (again after a failure): the decision table and the coordinator's tag; with `checkParticipants`, each participant's setting too. */
  #readyOnce(checkParticipants = true): Promise<string> {
    const tag = (this.#tag ??= forgetOnFailure(this.#log.ensure(), () => (this.#tag = undefined)));
    if (!checkParticipants) return tag;
    const checked = (this.#checked ??= forgetOnFailure(
      Promise.all(
        this.#participants.map(([name, db]) => assertPreparedTransactionsEnabled(name, db.driver())),
      ),
      () => (this.#checked = undefined),
    ));
    return checked.then(() => tag);
  }

  /** PREPARE on every participant; on any failure, everything is rolled back and this throws. */
  async #prepareAll(open: OpenDecision, txs: RootTx[], names: string[], gids: string[]): Promise<void> {
    const prepared = await Promise.allSettled(txs.map((tx, i) => tx.prepare(gids[i]!)));
    const failed = prepared.findIndex((p) => p.status === 'rejected');
    if (failed < 0) return;
    await open.trx.rollback();
    // Prepared ones, and those whose PREPARE outcome is unknown (a lost connection): a gid not
    // prepared is answered 42704, and one prepared later still is recover()'s (its coordinator
    // transaction has aborted).
    await this.#rollbackPrepared(
      names,
      gids,
      (i) => prepared[i]!.status === 'fulfilled' || isUnknown((prepared[i] as PromiseRejectedResult).reason),
    );
    throw new TwoPhaseAbortedError(
      `Two-phase commit participant "${names[failed]}" could not prepare; every participant was rolled back.`,
      {
        participant: names[failed],
        step: 'prepare',
        cause: (prepared[failed] as PromiseRejectedResult).reason,
      },
    );
  }

  /** Commits the decision record; when that fails, rolls everything back (or leaves it to recover() when unknown). */
  async #decide(open: OpenDecision, names: string[], gids: string[], coordinatorTag: string): Promise<void> {
    let failure: unknown;
    try {
      await open.trx.commit();
      return;
    } catch (err) {
      failure = err;
    }
    const globalId = globalIdOf(coordinatorTag, open.xid);
    let status: string | null | undefined;
    if (!(failure instanceof CommitUnknownError)) {
      status = await this.#log.statusOf([open.xid]).then(
        (s) => s.get(open.xid),
        () => undefined,
      );
    }
    if (status === 'committed') return;
    if (status === 'aborted') {
      await this.#rollbackPrepared(names, gids, () => true);
      throw new TwoPhaseAbortedError(
        'Two-phase commit: the coordinator could not record the decision; every participant was rolled back.',
        { step: 'decide', cause: failure },
      );
    }
    this.#logger.error(
      { globalId, err: messageOf(failure) },
      'two-phase decision outcome unknown; recover() resolves it',
    );
    throw new CommitUnknownError(
      `Two-phase commit ${globalId}: the decision's COMMIT was lost; its prepared transactions stay in doubt until recover() resolves them.`,
      { xid: open.xid, cause: failure },
    );
  }

  /** COMMIT PREPARED everywhere, each retried with backoff. @throws TwoPhaseIncompleteError naming the rest. */
  async #commitAll(names: string[], gids: string[], globalId: string): Promise<void> {
    const outcomes = await Promise.allSettled(
      this.#participants.map(([, db], i) => this.#commitWithRetry(db.driver(), gids[i]!)),
    );
    const pending = names.filter((_, i) => outcomes[i]!.status === 'rejected');
    if (pending.length === 0) return;
    const cause: unknown = (outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult).reason;
    this.#logger.error(
      { globalId, pending, err: messageOf(cause) },
      'two-phase commit decided but not finished; recover() commits the rest',
    );
    throw new TwoPhaseIncompleteError(
      `Two-phase commit ${globalId} is decided (it will commit) but ${pending.map((p) => `"${p}"`).join(', ')} could not be committed yet; recover() commits ${pending.length === 1 ? 'it' : 'them'}. Do not re-run the work.`,
      { pending, globalId, cause },
    );
  }

  async #commitWithRetry(knex: Knex, gid: string): Promise<void> {
    // false: already committed (by recover() elsewhere).
    const commit = (): Promise<void> => finishPrepared(knex, gid, 'commit').then(() => undefined);
    // The transactions' own retry loop: full jitter, capped at 1 s.
    await commit().catch((first: unknown) =>
      retryAfterFailure(first, commit, {
        maxAttempts: this.#commitAttempts,
        baseDelayMs: this.#commitRetryBaseMs,
        maxDelayMs: 1_000,
        shouldRetry: () => true,
        onRetry: ({ attempt, delayMs, error }) =>
          this.#logger.warn(
            { gid, attempt, delayMs, err: messageOf(error) },
            'COMMIT PREPARED failed; retrying',
          ),
      }),
    );
  }

  /** ROLLBACK PREPARED on the participants `which` selects; failures are logged (recover() finishes them). */
  async #rollbackPrepared(names: string[], gids: string[], which: (i: number) => boolean): Promise<void> {
    await Promise.all(
      this.#participants.map(async ([, db], i) => {
        if (!which(i)) return;
        try {
          await finishPrepared(db.driver(), gids[i]!, 'rollback');
        } catch (err) {
          this.#logger.warn(
            { participant: names[i], gid: gids[i], err: messageOf(err) },
            'ROLLBACK PREPARED failed; recover() rolls it back',
          );
        }
      }),
    );
  }
}

/** The TxManager handle behind a participant's transaction; its own commit()/rollback() refused. */
function beginParticipant(name: string, trx: Knex.Transaction): RootTx {
  const handle = handleOf(trx);
  if (!handle || handle.root !== handle) {
    void trx.rollback().catch(() => {});
    throw new TxOptionsError(
      `Two-phase commit participant "${name}" is not a PostgresDatabase (its beginTx() must come from TxManager).`,
    );
  }
  Object.assign(trx, { commit: refuseManualEnd, rollback: refuseManualEnd });
  return handle;
}

/** True when a failed PREPARE may still have prepared (the connection broke, the deadline passed). */
function isUnknown(err: unknown): boolean {
  const { kind } = classifyError(err);
  return kind === 'connection' || kind === 'timeout';
}

/** `p`, after which `forget` runs if it rejects (so the next call tries again). */
function forgetOnFailure<T>(p: Promise<T>, forget: () => void): Promise<T> {
  p.catch(forget);
  return p;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
