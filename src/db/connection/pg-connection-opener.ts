import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import type { PostgresConfig, TargetSessionAttrs } from '../../config/app-config.js';
import type { Logger } from '../../observability/logger.js';
import {
  abortConnect,
  guardAuthentication,
  isMarkedBroken,
  markBroken,
  onParameterStatus,
  type DriverConnection,
} from '../knex-internals.js';
import { formatHostPort, type HostPort } from '../../config/host-port.js';
import { authRequestCheck } from './auth-policy.js';
import { pgClientConfig } from './pg-connection-config.js';
import {
  candidateHosts,
  connectPasses,
  noMatchingHostError,
  sessionMatches,
  stillMatches,
} from './session-target.js';
import { isTlsRefused, sslOptions, type SslPlan } from './ssl-options.js';
import { installTransactionPooling } from './transaction-pooling.js';

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
 * - TLS per `sslMode` (see `sslOptions`); for `prefer`, every new connection asks for TLS
 *   first, and a plain one is opened only when the server refuses it (logged at warn when
 *   connections turn plain, at info when TLS is back). SCRAM channel binding per
 *   `channelBinding`; a cleartext or MD5 password request over an unverified connection is
 *   refused unless `allowInsecurePasswordAuth` (see `authRequestCheck`).
 * - Our own deadline around connect (pg#3197: pg's `connectionTimeoutMillis` does not bound
 *   a DNS stall); a connection that arrives after the deadline is closed at once (pg#3543).
 * - An 'error' listener from birth (pg#2762): a connection that breaks (server restart,
 *   `pg_terminate_backend`) is marked broken so knex's pool `validate` drops it,
 *   and is logged at warn, secret-free. Without a listener, pg's 'error' event would crash
 *   the process.
 * - Several hosts (`hosts`, libpq's multi-host list; node-postgres has none): each new
 *   connection tries them in order, each within `timeoutMs`, and keeps the first that accepts
 *   and matches `targetSessionAttrs` (libpq's checks, see `sessionMatches`); a host that
 *   refuses or does not match is skipped. A kept connection that stops matching (a standby
 *   promoted, a primary turned read-only: the server reports it, PostgreSQL 14+) is marked
 *   broken, so the pool retires it when it is next checked out or returned.
 */
export class PgConnectionOpener {
  readonly #cfg: PostgresConfig;
  /** pg client settings without password, timeout and TLS; the config is frozen, so built once. */
  readonly #clientConfig: ReturnType<typeof pgClientConfig>;
  readonly #logger: Logger;
  readonly #onBroken: (err: unknown) => void;
  #plan: SslPlan | undefined;
  /** `prefer`: the last connection fell back to plain TCP (a warn is logged on each change to it). */
  #plainFallback = false;
  readonly #hosts: readonly HostPort[];
  readonly #attrs: TargetSessionAttrs;

  /**
   * @param opts.hosts servers to try in order (default: `cfg.hosts`, else `cfg.host`/`cfg.port`)
   * @param opts.targetSessionAttrs default `cfg.targetSessionAttrs` ('any' when absent)
   */
  constructor(
    cfg: PostgresConfig,
    logger: Logger,
    opts: {
      onBroken?: (err: unknown) => void;
      hosts?: readonly HostPort[];
      targetSessionAttrs?: TargetSessionAttrs;
    } = {},
  ) {
    this.#cfg = cfg;
    this.#clientConfig = pgClientConfig(cfg);
    this.#logger = logger;
    this.#onBroken = opts.onBroken ?? (() => {});
    this.#hosts = opts.hosts ?? candidateHosts(cfg);
    this.#attrs = opts.targetSessionAttrs ?? cfg.targetSessionAttrs ?? 'any';
  }

  /**
   * Opens and authenticates one connection within `timeoutMs`.
   * @throws the driver's error, or an Error with code `CONNECT_TIMEOUT` at the deadline.
   */
  async open(timeoutMs: number = this.#cfg.timeout): Promise<PooledPgClient> {
    const only = this.#hosts.length === 1 ? this.#hosts[0] : undefined;
    // One host, any session: today's single connect, no check, no listener.
    if (only && this.#attrs === 'any') return this.#openHost(only, timeoutMs, undefined);
    return this.#openMatching(timeoutMs);
  }

  /**
   * libpq's multi-host connect: for each pass (`prefer-standby`: standby, then any), each host
   * in order; the first session that matches is kept, the others are closed.
   * @throws the first host's error when no host accepted; an Error with code
   *   `NO_MATCHING_HOST` (naming each host and what it was) when some accepted but none matched.
   */
  async #openMatching(timeoutMs: number): Promise<PooledPgClient> {
    const tried: Array<{ host: string; outcome: string }> = [];
    let firstError: unknown;
    let answered = false;
    for (const mode of connectPasses(this.#attrs)) {
      for (const target of this.#hosts) {
        const reported = new Map<string, string>();
        let client: PooledPgClient;
        try {
          client = await this.#openHost(target, timeoutMs, reported);
        } catch (err) {
          firstError ??= err;
          const { code, message } = describeError(err);
          tried.push({ host: formatHostPort(target), outcome: code ?? message });
          continue;
        }
        answered = true;
        let matches = false;
        try {
          matches = await sessionMatches(mode, reported, client);
        } catch (err) {
          firstError ??= err;
        }
        if (matches) {
          if (mode !== 'any') this.#watchTarget(client, mode, reported, target);
          return client;
        }
        tried.push({ host: formatHostPort(target), outcome: `not ${mode}` });
        client.end().catch(() => {});
      }
    }
    if (!answered) throw firstError instanceof Error ? firstError : new Error(String(firstError));
    throw noMatchingHostError(this.#attrs, tried);
  }

  /** Retires `client` (marks it broken) once the server reports it no longer matches `mode`. */
  #watchTarget(
    client: PooledPgClient,
    mode: TargetSessionAttrs,
    reported: Map<string, string>,
    target: HostPort,
  ): void {
    onParameterStatus(client, (name, value) => {
      reported.set(name, value);
      if (stillMatches(mode, reported) !== false || isMarkedBroken(client)) return;
      markBroken(client, `the server no longer matches targetSessionAttrs=${mode}`);
      this.#logger.warn(
        { host: formatHostPort(target), parameter: name, value, targetSessionAttrs: mode },
        'the server no longer matches targetSessionAttrs (promoted or turned read-only); its connection is retired',
      );
    });
  }

  /** One host, TLS per `sslMode` (with `prefer`'s fallback to plain). */
  async #openHost(
    target: HostPort,
    timeoutMs: number,
    reported: Map<string, string> | undefined,
  ): Promise<PooledPgClient> {
    const plan = this.#sslPlan();
    let client: PooledPgClient;
    try {
      client = await this.#openOnce(plan.ssl, timeoutMs, target, reported);
    } catch (err) {
      if (!plan.fallbackToPlain || !isTlsRefused(err)) throw err;
      // Per connection: the next one asks for TLS again, so a refusal (or an attacker's 'N') never sticks.
      if (!this.#plainFallback) {
        this.#plainFallback = true;
        this.#logger.warn(
          { host: formatHostPort(target), sslMode: 'prefer' },
          'sslMode=prefer: the server does not offer TLS; this connection is plain TCP (readable and changeable on the network path). Every new connection asks for TLS again; use verify-full to refuse plain connections',
        );
      }
      return this.#openOnce(false, timeoutMs, target, reported);
    }
    if (plan.fallbackToPlain && this.#plainFallback) {
      this.#plainFallback = false;
      this.#logger.info({ host: formatHostPort(target) }, 'sslMode=prefer: the server offers TLS again');
    }
    return client;
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

  #openOnce(
    ssl: false | ConnectionOptions,
    timeoutMs: number,
    target: HostPort,
    reported: Map<string, string> | undefined,
  ): Promise<PooledPgClient> {
    const client: PooledPgClient = new pg.Client({
      ...this.#clientConfig,
      host: target.host,
      port: target.port,
      connectionTimeoutMillis: timeoutMs,
      ssl,
      // SCRAM-SHA-256-PLUS when the server offers it over TLS (pg chooses it first when enabled).
      enableChannelBinding: this.#cfg.channelBinding !== 'disable',
      // pg copies it into a non-enumerable property; this object is dropped right away.
      password: this.#cfg.password,
    });
    const check = authRequestCheck({
      tls: ssl !== false,
      verified: ssl !== false && this.#sslPlan().verified,
      host: target.host,
      channelBinding: this.#cfg.channelBinding,
      allowInsecurePasswordAuth: this.#cfg.allowInsecurePasswordAuth,
      sslMode: this.#cfg.sslMode,
      where: formatHostPort(target),
    });
    if (!guardAuthentication(client, check))
      return Promise.reject(
        new Error('The installed pg lacks the authentication handlers this layer guards.'),
      );
    // PgBouncer transaction pooling: nothing session-level on this client (see the module).
    if (this.#cfg.poolerMode === 'transaction') installTransactionPooling(client, this.#cfg, this.#logger);
    let connected = false;
    // The startup reports (default_transaction_read_only, in_hot_standby) decide the target without a query.
    if (reported) onParameterStatus(client, (name, value) => reported.set(name, value));
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
