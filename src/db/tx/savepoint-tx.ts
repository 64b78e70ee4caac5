import type { Knex } from 'knex';
import { TransactionAbortedError, TransactionStateError } from '../errors/errors.js';
import { savepointNameOf, transactionEnders, type TransactionEnders } from '../knex-internals.js';
import { registerHandle, type RootTx } from './root-tx.js';
import { StatementSet } from './tx-connection.js';
import { markTransactionEnded } from './tx-context.js';

const noop = (): void => {};

/**
 * A `nested` transaction: a savepoint inside its parent, through knex's nested transaction
 * (`SAVEPOINT`, `RELEASE SAVEPOINT`, `ROLLBACK TO SAVEPOINT`; knex runs sibling savepoints one
 * after another). Its failure rolls back to the savepoint only, leaving the parent usable.
 * Statements on its handle are refused once it (or its root) has ended.
 */
export class SavepointTx {
  readonly #parent: RootTx | SavepointTx;
  readonly #trx: Knex.Transaction;
  readonly #name: string | undefined;
  /** This savepoint's own statements: RELEASE waits for them, and names the first failure. */
  readonly #statements = new StatementSet();
  readonly #ends: TransactionEnders;
  #ended = false;

  private constructor(parent: RootTx | SavepointTx, trx: Knex.Transaction, name: string | undefined) {
    this.#parent = parent;
    this.#trx = trx;
    this.#name = name;
    trx.executionPromise?.catch(noop);
    this.#ends = transactionEnders(trx);
    parent.root.connection!.watch(trx, this, parent.root.onStatement, this.#statements);
    registerHandle(trx, this);
  }

  /**
   * Opens a savepoint in `parent`.
   * @throws TransactionStateError when the parent is no longer usable.
   */
  static async begin(parent: RootTx | SavepointTx): Promise<SavepointTx> {
    if (!parent.usable) throw new TransactionStateError('The enclosing transaction has already ended.');
    const trx = await parent.trx.transaction();
    // knex names the savepoint after its transaction id and parks that id on the connection
    // while the savepoint lives; kept to recover from a failed RELEASE.
    return new SavepointTx(parent, trx, savepointNameOf(parent.root.connection?.raw));
  }

  get trx(): Knex.Transaction {
    return this.#trx;
  }

  get root(): RootTx {
    return this.#parent.root;
  }

  /** Why a statement may not run now: the savepoint (or its root) has ended. */
  refusal(): Error | undefined {
    return this.usable
      ? undefined
      : new TransactionStateError('The nested transaction has already ended; this statement was not sent.');
  }

  get usable(): boolean {
    return !this.#ended && this.#parent.usable;
  }

  /**
   * Releases the savepoint. If RELEASE fails (a statement inside failed and the callback
   * swallowed it, which aborts the whole transaction), rolls back to the savepoint so the
   * parent stays usable, and rejects.
   * @throws TransactionAbortedError with the swallowed failure as `cause`.
   */
  async commit(): Promise<void> {
    if (!this.usable) throw new TransactionStateError('The nested transaction is not active.');
    await this.#statements.settled();
    this.#ended = true;
    await this.#ends.commit();
    try {
      await this.#trx.executionPromise;
    } catch (err) {
      if (this.#name && this.root.usable)
        await this.root.inner(`rollback to savepoint "${this.#name}"`).catch(noop);
      throw new TransactionAbortedError(
        'The savepoint could not be released: a statement inside it had failed.',
        {
          cause: this.#statements.firstError ?? err,
        },
      );
    } finally {
      markTransactionEnded(this.#trx);
    }
  }

  /** Rolls back to the savepoint; never throws (a broken connection fails the root instead). */
  async rollback(cause?: unknown): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    markTransactionEnded(this.#trx);
    if (!this.root.usable) return;
    await this.#statements.settled();
    await this.#ends.rollback(cause).catch(noop);
  }
}
