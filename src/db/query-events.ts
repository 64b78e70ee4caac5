import type { Knex } from 'knex';

/** What knex passes to its `query`, `query-response` and `query-error` listeners. */
export interface QueryEvent {
  __knexQueryUid?: string;
  __knexTxId?: string;
  sql?: string;
  bindings?: readonly unknown[];
  method?: string;
}

/** Listeners for one knex instance's statement events. */
export interface QueryEventHandlers {
  onQuery: (q: QueryEvent) => void;
  onResponse: (response: unknown, q: QueryEvent) => void;
  onError: (err: unknown, q: QueryEvent) => void;
}

/**
 * Subscribes `handlers` to knex's `query`, `query-response` and `query-error` events (they
 * also fire for statements run inside knex transactions, through the transaction's client).
 * @returns the unsubscription.
 */
export function onQueryEvents(knex: Knex, handlers: QueryEventHandlers): () => void {
  const { onQuery, onResponse, onError } = handlers;
  knex.on('query', onQuery);
  knex.on('query-response', onResponse);
  knex.on('query-error', onError);
  return () => {
    knex.off('query', onQuery);
    knex.off('query-response', onResponse);
    knex.off('query-error', onError);
  };
}
