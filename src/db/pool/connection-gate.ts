import { context, SpanKind, SpanStatusCode, type Attributes, type Tracer } from '@opentelemetry/api';
import type { Knex } from 'knex';
import type { Metrics } from '../../observability/metrics.js';
import { ConnectionError, DatabaseClosedError, PoolExhaustedError } from '../errors/errors.js';
import { translateAcquireError } from '../errors/translate-error.js';
import { tarnPoolOf, wrapPoolAccess } from '../knex-internals.js';
import { failureAttributes } from '../span-attributes.js';
import type { PoolMonitor } from './pool-monitor.js';

/** A per-connection hook (foreign-connection guard, per-connection deadlines plug in here). */
export interface ConnectionHook {
  /** Runs after a connection is checked out, before knex uses it. Throwing releases it and fails the acquire. */
  onAcquire?(connection: unknown): void;
  /** Runs before a connection goes back to the pool. Must not throw. */
  onRelease?(connection: unknown): void;
}

/**
 * The one place where pool connections are checked out and returned. Every acquire on the
 * knex instance passes here, whether from a builder, `knex.raw`, `knex.transaction()` or
 * objection (transactions run their statements on the connection they acquired once).
 * - While the database is draining or closed, a new acquire rejects with `DatabaseClosedError`.
 * - knex's acquire timeout becomes `PoolExhaustedError` (with the oldest holders) when every
 *   connection is checked out, else `ConnectionError` (the server did not answer in time).
 * - A failure to open a connection becomes `ConnectionError` with a hint, the driver error as `cause`.
 * - With `tracing`, each checkout is an INTERNAL span `db.connection.acquire` (a child of the
 *   active span: the transaction's, or the request's), status ERROR with `error.type` when it
 *   fails. Without it, the acquire path makes no OpenTelemetry call.
 */
export class ConnectionGate {
  readonly #knex: Knex;
  readonly #monitor: PoolMonitor;
  readonly #metrics: Metrics;
  #max: number;
  readonly #hooks = new Set<ConnectionHook>();
  #open = false;

  constructor(
    knex: Knex,
    opts: {
      monitor: PoolMonitor;
      metrics: Metrics;
      max: number;
      tracing?: { tracer: Tracer; attributes: Attributes } | undefined;
    },
  ) {
    this.#knex = knex;
    this.#monitor = opts.monitor;
    this.#metrics = opts.metrics;
    this.#max = opts.max;
    const tracing = opts.tracing;
    wrapPoolAccess(knex, ({ acquire, release }) => ({
      acquire:
        tracing === undefined
          ? () => this.#acquire(acquire, release)
          : () => this.#tracedAcquire(tracing.tracer, tracing.attributes, acquire, release),
      release: (connection: unknown) => {
        for (const hook of this.#hooks) hook.onRelease?.(connection);
        return release(connection);
      },
    }));
  }

  /** The pool size now (a resize): `PoolExhaustedError` compares checkouts with it. */
  setMax(max: number): void {
    this.#max = max;
  }

  /** Lets acquires through (`connect()`), or refuses them (`disconnect()`/`close()`). */
  setOpen(open: boolean): void {
    this.#open = open;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  /** Adds a hook; returns its removal. */
  addHook(hook: ConnectionHook): () => void {
    this.#hooks.add(hook);
    return () => this.#hooks.delete(hook);
  }

  async #acquire(
    acquire: () => Promise<unknown>,
    release: (connection: unknown) => Promise<unknown>,
  ): Promise<unknown> {
    if (!this.#open)
      throw new DatabaseClosedError('The database is closing or closed; no new work is accepted.');
    let connection: unknown;
    try {
      connection = await acquire();
    } catch (err) {
      throw this.#translate(err);
    }
    try {
      for (const hook of this.#hooks) hook.onAcquire?.(connection);
    } catch (err) {
      await release(connection);
      throw err;
    }
    return connection;
  }

  async #tracedAcquire(
    tracer: Tracer,
    attributes: Attributes,
    acquire: () => Promise<unknown>,
    release: (connection: unknown) => Promise<unknown>,
  ): Promise<unknown> {
    const span = tracer.startSpan(
      'db.connection.acquire',
      { kind: SpanKind.INTERNAL, attributes },
      context.active(),
    );
    try {
      return await this.#acquire(acquire, release);
    } catch (err) {
      span.setAttributes(failureAttributes(err));
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw err;
    } finally {
      span.end();
    }
  }

  #translate(err: unknown): Error {
    const full = (tarnPoolOf(this.#knex)?.numUsed() ?? 0) >= this.#max;
    const typed = translateAcquireError(err, {
      closed: !this.#open,
      full,
      max: this.#max,
      holders: () => this.#monitor.holders(),
    });
    if (typed instanceof PoolExhaustedError) this.#metrics.errors.inc({ class: 'pool_exhausted' });
    else if (typed instanceof ConnectionError) this.#metrics.errors.inc({ class: 'connection' });
    return typed;
  }
}
