import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import type { PostgresConfig } from '../../config/app-config.js';
import type { Logger } from '../../observability/logger.js';
import { abortConnect, isMarkedBroken, markBroken, type DriverConnection } from '../knex-internals.js';
import { pgClientConfig } from './pg-connection-config.js';
import { isTlsRefused, sslOptions, type SslPlan } from './ssl-options.js';

/** A pg client as knex's pool holds it; knex's pool `validate` drops it once marked broken. */
export type PooledPgClient = pg.Client & DriverConnection;

/** The secret-free part of a driver error, safe for logs and messages. */
export function describeError(err: unknown): { code?: string; message: string } {
  if (!(err instanceof Error)) return { message: String(err) };
  const code = (err as { code?: unknown }).code;
  return { ...(typeof code === 'string' ? { code } : {}), message: err.message };
}

/**
 * Opens pg connections, for the pool and for health checks, in one place:
 * - TLS per `sslMode` (see `sslOptions`); for `prefer`, a server that refuses TLS is
 *   remembered until `resetTlsPreference()`, so later connections skip the TLS probe.
 * - Our own deadline around connect (pg#3197: pg's `connectionTimeoutMillis` does not bound
 *   a DNS stall); a connection that arrives after the deadline is closed at once (pg#3543).
 * - An 'error' listener from birth (pg#2762): a connection that breaks (server restart,
 *   `pg_terminate_backend`) is marked broken so knex's pool `validate` drops it,
 *   and is logged at warn, secret-free. Without a listener, pg's 'error' event would crash
 *   the process.
 */
export class PgConnectionOpener {
  readonly #cfg: PostgresConfig;
  /** pg client settings without password, timeout and TLS; the config is frozen, so built once. */
  readonly #clientConfig: ReturnType<typeof pgClientConfig>;
  readonly #logger: Logger;
  readonly #onBroken: (err: unknown) => void;
  #plan: SslPlan | undefined;
  #tlsRefused = false;

  constructor(cfg: PostgresConfig, logger: Logger, opts: { onBroken?: (err: unknown) => void } = {}) {
    this.#cfg = cfg;
    this.#clientConfig = pgClientConfig(cfg);
    this.#logger = logger;
    this.#onBroken = opts.onBroken ?? (() => {});
  }

  /** Makes `prefer` try TLS again on the next connection (called by `connect()`). */
  resetTlsPreference(): void {
    this.#tlsRefused = false;
  }

  /**
   * Opens and authenticates one connection within `timeoutMs`.
   * @throws the driver's error, or an Error with code `CONNECT_TIMEOUT` at the deadline.
   */
  async open(timeoutMs: number = this.#cfg.timeout): Promise<PooledPgClient> {
    const plan = this.#sslPlan();
    if (plan.fallbackToPlain && this.#tlsRefused) return this.#openOnce(false, timeoutMs);
    try {
      return await this.#openOnce(plan.ssl, timeoutMs);
    } catch (err) {
      if (!plan.fallbackToPlain || !isTlsRefused(err)) throw err;
      this.#tlsRefused = true;
      this.#logger.info('sslMode=prefer: the server does not offer TLS; using plain connections');
      return this.#openOnce(false, timeoutMs);
    }
  }

  #sslPlan(): SslPlan {
    if (this.#plan) return this.#plan;
    let ca: string | undefined;
    if (this.#cfg.sslRootCert && this.#cfg.sslMode !== 'disable') {
      try {
        ca = readFileSync(this.#cfg.sslRootCert, 'utf8');
      } catch (err) {
        throw Object.assign(new Error('Cannot read the sslRootCert file.', { cause: err }), {
          code: 'SSL_ROOT_CERT_UNREADABLE',
        });
      }
    }
    this.#plan = sslOptions(this.#cfg.sslMode, ca);
    return this.#plan;
  }

  #openOnce(ssl: false | ConnectionOptions, timeoutMs: number): Promise<PooledPgClient> {
    const client: PooledPgClient = new pg.Client({
      ...this.#clientConfig,
      connectionTimeoutMillis: timeoutMs,
      ssl,
      // pg copies it into a non-enumerable property; this object is dropped right away.
      password: this.#cfg.password,
    });
    let connected = false;
    client.on('error', (err) => {
      // pg emits twice for one death (the server's 57P01, then "terminated unexpectedly"): log once.
      const first = !isMarkedBroken(client);
      markBroken(client, err);
      if (!connected || !first) return; // before connect, connect() rejects with it
      this.#logger.warn(
        { err: describeError(err), pid: (client as { processID?: number }).processID },
        'database connection broke; it is discarded and the pool opens a new one',
      );
      this.#onBroken(err);
    });
    client.on('end', () => {
      markBroken(client, 'Connection ended');
    });
    return new Promise<PooledPgClient>((resolve, reject) => {
      let late = false;
      const timer = setTimeout(() => {
        late = true;
        const err = Object.assign(new Error(`Connecting to the database took longer than ${timeoutMs} ms.`), {
          code: 'CONNECT_TIMEOUT',
        });
        reject(err);
        // Abandon the attempt now (a DNS lookup or TLS handshake may still be pending).
        abortConnect(client);
      }, timeoutMs);
      client.connect().then(
        () => {
          clearTimeout(timer);
          connected = true;
          if (!late) return resolve(client);
          // Arrived after its caller gave up: close it, or it would idle on the server forever.
          client.end().catch(() => {});
        },
        (err: unknown) => {
          clearTimeout(timer);
          if (!late) reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }
}
