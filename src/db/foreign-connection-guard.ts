import { AsyncLocalStorage } from 'node:async_hooks';
import type { Knex } from 'knex';
import type { ForeignConnectionGuardMode } from '../config/app-config.js';
import type { Logger } from '../observability/logger.js';
import { ForeignConnectionError } from './errors.js';
import { currentTransaction } from './tx-context.js';

const ownAcquire = new AsyncLocalStorage<true>();
const GUARD = Symbol('pgdl.foreignConnectionGuard');

type GuardedClient = {
  acquireConnection(): Promise<unknown>;
  [GUARD]?: { mode: ForeignConnectionGuardMode; logger: Logger };
};

/** Runs `acquire` as the transaction manager's own checkout, which the guard lets through. */
export function acquireOwn<T>(acquire: () => Promise<T>): Promise<T> {
  return ownAcquire.run(true, acquire);
}

/**
 * Watches pool checkouts on `knex` (knex#1171, knex#1040): inside an ambient transaction, a
 * query on the base knex instead of the transaction takes a second pool connection. It runs
 * outside the transaction (it cannot see its uncommitted rows, and commits on its own), and on
 * a small pool it waits for a slot the transaction itself holds: a self-deadlock.
 *
 * - 'off': nothing. 'warn': logs at warn with the acquiring stack, then proceeds.
 * - 'error': rejects the query with `ForeignConnectionError` before it waits for a slot.
 *
 * The manager's own checkouts (`requiresNew`, `beginTx`) pass through `acquireOwn`. Installed
 * once per knex client by wrapping `client.acquireConnection` (every builder, `knex.raw`,
 * `knex.transaction()` and objection query acquires there); calling it again changes the mode.
 */
export function installForeignConnectionGuard(
  knex: Knex,
  mode: ForeignConnectionGuardMode,
  logger: Logger,
): void {
  const client = knex.client as GuardedClient;
  const existing = client[GUARD];
  if (existing) {
    existing.mode = mode;
    existing.logger = logger;
    return;
  }
  const state = { mode, logger };
  client[GUARD] = state;
  const acquire = client.acquireConnection.bind(client);
  client.acquireConnection = () => {
    if (state.mode !== 'off' && !ownAcquire.getStore() && currentTransaction()) {
      if (state.mode === 'error')
        return Promise.reject(
          new ForeignConnectionError(
            'A query inside a transaction asked for a second pool connection; run it on the transaction (trx) instead.',
          ),
        );
      state.logger.warn(
        { stack: new Error('acquired here').stack },
        'a query inside a transaction took a second pool connection: it runs outside the transaction (knex#1171)',
      );
    }
    return acquire();
  };
}
