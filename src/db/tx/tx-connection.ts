import type { Logger } from '../../observability/logger.js';
import { sendCancelRequest } from '../connection/cancel-request.js';

/** A pooled pg Client as knex holds it (the fields read here are pg's and knex's). */
export interface PooledConnection {
  processID?: number | null;
  secretKey?: number | null;
  host?: string;
  port?: number;
  __knex__disposed?: unknown;
  __knexTxId?: string;
  _queryable?: boolean;
  _ending?: boolean;
  end(): Promise<void>;
}

const noop = (): void => {};

/**
 * The pool connection one top-level transaction holds, from checkout to its return. It goes
 * back to the pool only as healthy (its transaction state known to be idle); otherwise it is
 * destroyed (pg#3399, drizzle#6114): closed now, and marked `__knex__disposed` so that knex's
 * pool `validate` drops it instead of handing it out again.
 */
export class TxConnection {
  readonly raw: PooledConnection;
  readonly #release: (connection: unknown) => Promise<void>;
  readonly #logger: Logger;
  #released = false;

  constructor(raw: PooledConnection, release: (connection: unknown) => Promise<void>, logger: Logger) {
    this.raw = raw;
    this.#release = release;
    this.#logger = logger;
  }

  /** The socket broke or pg gave up on it: nothing more can be sent. */
  get broken(): boolean {
    const c = this.raw;
    return c.__knex__disposed !== undefined || c._queryable === false || c._ending === true;
  }

  /** The backend's process id (for pg_terminate_backend), if known. */
  get processID(): number | undefined {
    return this.raw.processID ?? undefined;
  }

  /**
   * Cancels the statement running on this connection, out of band (CancelRequest on a new
   * socket). The caller must send nothing else until this resolves, so the cancel cannot hit a
   * later statement.
   * @returns false when the cancel could not be delivered (the connection's state is then unknown).
   */
  async cancelRunning(timeoutMs: number): Promise<boolean> {
    const { processID, secretKey, host, port } = this.raw;
    if (!processID || secretKey === null || secretKey === undefined || !host || !port) return false;
    try {
      await sendCancelRequest({ host, port, processID, secretKey }, timeoutMs);
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
    delete conn.__knexTxId;
    if (!healthy || this.broken) {
      conn.__knex__disposed ??= `destroyed by TxManager: ${reason}`;
      conn.end().catch(noop);
      this.#logger.debug({ reason }, 'transaction connection destroyed');
    }
    this.#release(conn).catch(noop);
  }
}
