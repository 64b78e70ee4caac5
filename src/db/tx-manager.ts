// SKELETON: the transaction-manager work replaces this file (see issue 3).
import type { Knex } from 'knex';
import type { Database, TxOptions } from './database.js';
import type { Logger } from '../observability/logger.js';
import { transactionContext, currentTransaction } from './tx-context.js';

export class TxManager {
  readonly #db: Database;
  readonly #logger: Logger;

  constructor(db: Database, logger: Logger) {
    this.#db = db;
    this.#logger = logger;
  }

  async withTransaction<T>(fn: (trx: Knex.Transaction) => Promise<T>, _opts: TxOptions = {}): Promise<T> {
    const ambient = currentTransaction();
    if (ambient) return fn(ambient);
    return this.#db.driver().transaction((trx) => transactionContext.run(trx, () => fn(trx)));
  }

  withReadOnlyTransaction<T>(fn: (trx: Knex.Transaction) => Promise<T>, opts: TxOptions = {}): Promise<T> {
    return this.withTransaction(fn, { ...opts, readOnly: true });
  }

  withTimeout<T>(
    timeoutMs: number,
    fn: (trx: Knex.Transaction) => Promise<T>,
    opts: TxOptions = {},
  ): Promise<T> {
    return this.withTransaction(fn, { ...opts, timeoutMs });
  }

  async beginTx(_opts: TxOptions = {}): Promise<Knex.Transaction> {
    this.#logger.debug('beginTx');
    return this.#db.driver().transaction();
  }

  current(): Knex.Transaction | undefined {
    return currentTransaction();
  }
}
