import type { Knex } from 'knex';
import { isClientSideTimeout } from '../errors/classify-error.js';

/** A statement's raw result, as knex's pg client resolves it (`obj.response` is pg's Result). */
export interface RawResult {
  response?: { command?: string; rows?: Record<string, unknown>[] };
}

/** Runs one statement on the transaction's connection, bypassing the user-facing checks. */
export type InnerQuery = (sql: string, bindings?: unknown[]) => Promise<RawResult>;

type TxClient = {
  query(connection: unknown, obj: unknown): Promise<unknown>;
  stream(connection: unknown, obj: unknown, stream: unknown, options: unknown): Promise<unknown>;
};

/**
 * Watches the statements one transaction handle sends (its knex trxClient is private to it):
 * refuses them once the transaction may no longer be used (after the end, after a timeout:
 * drizzle#6083, prisma#17245), counts the ones in flight so COMMIT waits for a floating query
 * and a rollback can cancel a running one, and remembers the first failure (the `cause` when
 * COMMIT answers ROLLBACK).
 *
 * knex's own BEGIN/SAVEPOINT/COMMIT/ROLLBACK arrive as plain strings and pass untouched.
 */
export class StatementTracker {
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #inner: InnerQuery;
  #firstError: unknown;
  #serverMayBeBusy = false;

  /**
   * @param refusal - returns the error to reject a statement with, or undefined to let it run.
   * @param onStatement - called before each statement that is let through (the `onStatement`
   *   hooks); undefined when no hook wants statements, which costs one comparison per statement.
   */
  constructor(
    trx: Knex.Transaction,
    connection: unknown,
    refusal: () => Error | undefined,
    onStatement?: () => void,
  ) {
    const client = (trx as unknown as { client: TxClient }).client;
    const query = client.query.bind(client);
    const stream = client.stream.bind(client);
    this.#inner = (sql, bindings = []) =>
      query(connection, { sql, bindings, method: 'raw' }) as Promise<RawResult>;
    client.query = (conn, obj) => {
      if (typeof obj === 'string') return query(conn, obj);
      const refused = refusal();
      if (refused) return Promise.reject(refused);
      if (onStatement !== undefined) onStatement();
      return this.#track(query(conn, obj));
    };
    client.stream = (conn, obj, s, options) => {
      const refused = refusal();
      if (refused) return Promise.reject(refused);
      if (onStatement !== undefined) onStatement();
      return this.#track(stream(conn, obj, s, options));
    };
  }

  /** Runs an internal statement (timeouts, xid lookup) on the connection, unchecked. */
  get inner(): InnerQuery {
    return this.#inner;
  }

  /** The first statement failure seen, if any. */
  get firstError(): unknown {
    return this.#firstError;
  }

  /**
   * True when a statement may still be running on the server although its promise settled
   * (pg's client-side `query_timeout` gave up on it), or one is still in flight.
   */
  get serverMayBeBusy(): boolean {
    return this.#serverMayBeBusy || this.#inflight.size > 0;
  }

  /** Resolves when every statement in flight has settled (their outcome is the caller's). */
  async settled(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#inflight.add(p);
    p.then(
      () => this.#inflight.delete(p),
      (err: unknown) => {
        this.#inflight.delete(p);
        this.#firstError ??= err;
        if (isClientSideTimeout(err)) this.#serverMayBeBusy = true;
      },
    );
    return p;
  }
}
