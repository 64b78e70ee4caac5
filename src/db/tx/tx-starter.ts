import type { Knex } from 'knex';
import type { ForeignConnectionGuardMode } from '../../config/app-config.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Database } from '../database.js';
import { acquireOwn, guardTransaction, installForeignConnectionGuard } from './foreign-connection-guard.js';
import { transactionContext } from './tx-context.js';
import { RootTx, type RootTxDeps } from './tx-handle.js';
import type { ResolvedTxOptions } from './tx-options.js';

/** How a `TxStarter` begins transactions (one manager's settings, fixed at construction). */
export interface TxStarterOptions {
  db: Database;
  logger: Logger;
  metrics: Metrics;
  guardMode: ForeignConnectionGuardMode;
  resolveLostCommit: boolean;
  /** Bound on learning a lost COMMIT's outcome, ms; undefined: RootTx's default (5 s). */
  lookupTimeoutMs: number | undefined;
}

/**
 * Begins the top-level transactions of one TxManager (each attempt of `withTransaction`, and
 * `beginTx`): a `RootTx` on a connection of `db.driver()`, counted as started and watched by
 * the foreign-connection guard. What every transaction shares (`RootTxDeps`, the guard's
 * installation) is built once per knex instance, not per transaction.
 */
export class TxStarter {
  readonly #opts: TxStarterOptions;
  /** What every top-level transaction on `#guarded` shares (built once per knex instance). */
  #deps: RootTxDeps | undefined;
  #guarded: Knex | undefined;

  constructor(opts: TxStarterOptions) {
    this.#opts = opts;
  }

  /**
   * Begins a top-level transaction; `onStatement` from the hooks (beginTx passes none).
   * @throws what `RootTx.begin` throws (TransactionTimeoutError past the deadline, the
   *   acquire or BEGIN error otherwise); nothing is counted then.
   */
  async begin(o: ResolvedTxOptions, started: number, onStatement?: () => void): Promise<RootTx> {
    const { db, metrics, guardMode, logger } = this.#opts;
    const tx = await RootTx.begin(this.#depsFor(db.driver()), {
      isolationLevel: o.isolationLevel,
      readOnly: o.readOnly,
      deferrable: o.deferrable,
      timeoutMs: o.timeoutMs,
      deadline: o.timeoutMs === undefined ? undefined : started + o.timeoutMs,
      onStatement,
    });
    metrics.txStarted.inc({ isolation: o.isolationLevel ?? 'default' });
    guardTransaction(tx.trx, guardMode, logger);
    return tx;
  }

  #depsFor(knex: Knex): RootTxDeps {
    if (this.#guarded === knex && this.#deps) return this.#deps;
    installForeignConnectionGuard(knex);
    this.#guarded = knex;
    const client = knex.client as { acquireConnection(): Promise<unknown> };
    const acquire = (): Promise<unknown> => client.acquireConnection();
    const { logger, resolveLostCommit, lookupTimeoutMs } = this.#opts;
    this.#deps = {
      knex,
      logger,
      // Outside any ambient transaction the guard lets every checkout through: no need to
      // enter its AsyncLocalStorage (requiresNew and beginTx inside one still do).
      acquire: () => (transactionContext.getStore() === undefined ? acquire() : acquireOwn(acquire)),
      resolveLostCommit,
      ...(lookupTimeoutMs === undefined ? {} : { commitLookupTimeoutMs: lookupTimeoutMs }),
    };
    return this.#deps;
  }
}
