import type { ConnectionOptions } from 'node:tls';
import knexFactory, { type Knex } from 'knex';
import type { Pool } from 'tarn';

/*
 * The one module that touches private members of knex, tarn and pg. Every guarantee that
 * needs one (a broken connection never pooled again, statements refused after the end, a
 * cancel aimed at the right backend, idle connections evicted after a failover) goes through
 * a named function here, and `assertDriverShape()` (run by a test against the installed
 * versions) fails loudly, naming the member, when an upgrade takes one away.
 *
 * Relied on, by version: knex 3.3 (`client.acquireConnection`, `releaseConnection`,
 * `acquireRawConnection`, `checkVersion`, the pg dialect's `_driver` and `driver.Client`, `version`, `pool`, `runner` and its Runner's
 * `ensureConnection`/`builder`; a transaction's private `client.query`/`client.stream`; the
 * connection marks `__knex__disposed`, `__knexTxId`, `__knexLifetimeLimit`), tarn 3 (`free`
 * with each entry's `resource`, `timestamp` and `settle`, `_destroy`, the `max` field and
 * `_tryAcquireOrCreate` for a resize), pg 8 (`processID`,
 * `secretKey`, `ssl`, `_queryable`, `_ending`, `connection.stream`, the `connection`'s `parameterStatus`
 * and `authenticationOk` events, and the Client's `_handleAuthCleartextPassword`,
 * `_handleAuthMD5Password` and `_handleAuthSASL`, its `connection.sendSASLInitialResponseMessage`).
 */

/** A pooled pg Client as knex holds it (the fields read here are pg's and knex's). */
export interface DriverConnection {
  processID?: number | null;
  secretKey?: number | null;
  host?: string;
  port?: number;
  /** pg's `ssl` option of this connection: false when it is plain TCP. */
  ssl?: boolean | ConnectionOptions;
  __knex__disposed?: unknown;
  __knexTxId?: string | undefined;
  __knexLifetimeLimit?: number;
  _queryable?: boolean;
  _ending?: boolean;
  connection?: { stream?: { destroy(): void } };
  end(): Promise<void>;
}

/** tarn's pool as knex creates it. */
export type TarnPool = Pool<DriverConnection>;

/** A statement as knex's client runs it: a string for knex's own BEGIN/COMMIT/ROLLBACK/SAVEPOINT. */
type KnexQuery = string | { sql: string; bindings?: unknown[]; method?: string };

/** The raw result knex's pg client resolves a statement with (`response` is pg's Result). */
export interface RawResult {
  response?: { command?: string; rows?: Record<string, unknown>[] };
}

/** knex's Runner (`client.runner(builder)`): runs one builder on a connection it checks out. */
type KnexRunner = {
  builder: unknown;
  ensureConnection(cb: unknown, params?: unknown): Promise<unknown>;
};

type KnexClient = {
  runner(builder: unknown): KnexRunner;
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<unknown>;
  acquireRawConnection(): Promise<unknown>;
  checkVersion(connection: unknown): Promise<string>;
  version?: string;
  pool?: TarnPool;
};

type TxClient = {
  query: (this: unknown, connection: unknown, obj: KnexQuery) => Promise<unknown>;
  stream: (
    this: unknown,
    connection: unknown,
    obj: unknown,
    stream: unknown,
    options: unknown,
  ) => Promise<unknown>;
};

/** One entry of tarn's free list: the connection, when it went idle (Date.now()), and its deferred. */
type TarnResource = { resource: DriverConnection; timestamp: number; settle(): void };

type TarnInternals = {
  free?: TarnResource[];
  max?: number;
  _destroy?(resource: unknown): Promise<unknown>;
  _tryAcquireOrCreate?(): void;
};

const clientOf = (knex: Knex): KnexClient => {
  const client: unknown = knex.client; // typed `any` by knex
  return client as KnexClient;
};

/**
 * Checks that the installed knex, tarn and pg still have every member this module uses.
 * @throws Error naming each missing member.
 */
export function assertDriverShape(knex: Knex, connection: object): void {
  const client = clientOf(knex) as unknown as Record<string, unknown>;
  const missing = [
    'runner',
    'acquireConnection',
    'releaseConnection',
    'acquireRawConnection',
    'checkVersion',
    '_driver',
  ].filter((m) => typeof client[m] !== 'function');
  if (typeof client.runner === 'function') {
    const runner = (client.runner as (b: unknown) => Record<string, unknown>).call(client, undefined);
    if (typeof runner.ensureConnection !== 'function') missing.push('knex Runner#ensureConnection');
    if (!('builder' in runner)) missing.push('knex Runner#builder');
  }
  const pool = client.pool as Record<string, unknown> | undefined;
  if (!pool) missing.push('knex.client.pool');
  else {
    if (!Array.isArray(pool.free)) missing.push('tarn Pool#free');
    else missing.push(...freeEntryGaps(pool.free as unknown[]));
    if (typeof pool._destroy !== 'function') missing.push('tarn Pool#_destroy');
    if (typeof pool.max !== 'number') missing.push('tarn Pool#max');
    if (typeof pool._tryAcquireOrCreate !== 'function') missing.push('tarn Pool#_tryAcquireOrCreate');
  }
  const conn = connection as Record<string, unknown>;
  for (const m of ['processID', 'secretKey', 'ssl', '_queryable', '_ending'])
    if (!(m in conn)) missing.push(`pg Client#${m}`);
  for (const m of Object.keys(PG_AUTH_HANDLERS))
    if (typeof conn[m] !== 'function') missing.push(`pg Client#${m}`);
  const pgConnection = conn.connection as Record<string, unknown> | undefined;
  for (const m of ['sendSASLInitialResponseMessage', 'on', 'emit'])
    if (typeof pgConnection?.[m] !== 'function') missing.push(`pg Connection#${m}`);
  if (typeof (conn.connection as { stream?: unknown } | undefined)?.stream !== 'object')
    missing.push('pg Client#connection.stream');
  const trxClientProto = Object.getPrototypeOf(knex.client) as Record<string, unknown>;
  for (const m of ['query', 'stream'])
    if (typeof trxClientProto[m] !== 'function') missing.push(`knex Client#${m}`);
  if (typeof client.transaction !== 'function') missing.push('knex Client#transaction');
  if (missing.length > 0)
    throw new Error(`The installed knex/tarn/pg lack members this layer relies on: ${missing.join(', ')}.`);
}

/** What an idle entry of tarn's free list lacks (checked on the first entry, when there is one). */
function freeEntryGaps(free: readonly unknown[]): string[] {
  const entry = free[0] as Record<string, unknown> | undefined;
  if (!entry) return [];
  const gaps: string[] = [];
  if (typeof entry.resource !== 'object') gaps.push('tarn Resource#resource');
  if (typeof entry.timestamp !== 'number') gaps.push('tarn Resource#timestamp');
  if (typeof entry.settle !== 'function') gaps.push('tarn Resource#settle');
  return gaps;
}

/** Replaces how knex's pool opens a connection (our opener: TLS, deadline, error listeners). */
export function setConnectionOpener(knex: Knex, open: () => Promise<DriverConnection>): void {
  const client = clientOf(knex);
  client.acquireRawConnection = async () => {
    const conn = await open();
    if (!client.version) {
      try {
        // knex's own acquireRawConnection asks once per instance; its dialect reads it.
        client.version = await client.checkVersion(conn);
      } catch (err) {
        conn.end().catch(() => {});
        throw err;
      }
    }
    return conn;
  };
}

/**
 * knex's pg dialect with pg's `Client` replaced by `ClientClass`, to pass as knex's `client`
 * option (knex accepts a Client class there). For connections knex opens itself (the migration
 * CLI builds its knex from a config, so there is no instance for `setConnectionOpener`). knex 3's
 * pg dialect creates each connection with `new this.driver.Client(settings)`, `driver` being
 * what its `_driver()` returns (the pg module); the subclass returns pg with `Client` shadowed.
 * The dialect class is read from a throwaway knex instance (no connection, so no pool), not
 * from knex's private module path.
 */
export function pgDialectWithClient(ClientClass: new (config: never) => object): typeof knexFactory.Client {
  const probe = knexFactory({ client: 'pg' }).client as object;
  const Base = probe.constructor as new (config: Knex.Config) => { _driver(): object };
  class PgDialectWithClient extends Base {
    override _driver(): object {
      return Object.create(super._driver(), { Client: { value: ClientClass, enumerable: true } }) as object;
    }
  }
  return PgDialectWithClient as unknown as typeof knexFactory.Client;
}

/** Opens a connection outside the pool, the way the pool does (for a lost COMMIT's lookup). */
export function openUnpooledConnection(knex: Knex): Promise<DriverConnection> {
  return clientOf(knex).acquireRawConnection() as Promise<DriverConnection>;
}

/** The checkout and return every knex query goes through, to wrap them (the gate, the guard). */
export interface PoolAccess {
  acquire: () => Promise<unknown>;
  release: (connection: unknown) => Promise<unknown>;
}

/** Wraps knex's pool checkout/return: `wrap` receives the current pair and returns the new one. */
export function wrapPoolAccess(knex: Knex, wrap: (inner: PoolAccess) => Partial<PoolAccess>): void {
  const client = clientOf(knex);
  const inner: PoolAccess = {
    acquire: client.acquireConnection.bind(client),
    release: client.releaseConnection.bind(client),
  };
  const next = wrap(inner);
  if (next.acquire) client.acquireConnection = next.acquire;
  if (next.release) client.releaseConnection = next.release;
}

/** Checks a connection out of knex's pool (through every wrapper). */
export function acquirePooled(knex: Knex): Promise<DriverConnection> {
  return clientOf(knex).acquireConnection() as Promise<DriverConnection>;
}

/** Returns a connection to knex's pool (through every wrapper). */
export function releasePooled(knex: Knex, connection: unknown): Promise<unknown> {
  return clientOf(knex).releaseConnection(connection);
}

/** knex's current tarn pool, if it has one. */
export function tarnPoolOf(knex: Knex): TarnPool | undefined {
  return clientOf(knex).pool;
}

/**
 * Where knex connects (`client.config.connection`, which knex parses into an object when given a
 * connection string): host, port and database only; the password is never read. A connection
 * function (settings resolved per connect) gives nothing.
 */
export function connectionTargetOf(knex: Knex): { host?: string; port?: number; database?: string } {
  const connection: unknown = (knex.client as { config?: { connection?: unknown } }).config?.connection;
  if (typeof connection !== 'object' || connection === null) return {};
  const { host, port, database } = connection as Record<string, unknown>;
  const portNumber = typeof port === 'string' && /^\d+$/.test(port) ? Number(port) : port;
  return {
    ...(typeof host === 'string' && host !== '' ? { host } : {}),
    ...(typeof portNumber === 'number' ? { port: portNumber } : {}),
    ...(typeof database === 'string' && database !== '' ? { database } : {}),
  };
}

/** Forgets a pool that did not close in time (knex's destroy then has nothing to wait for). */
export function abandonPool(knex: Knex): void {
  clientOf(knex).pool = undefined;
}

/** tarn's current pool size (its `max` field, read by every create decision). */
export function poolMaxOf(pool: TarnPool): number {
  return (pool as unknown as TarnInternals).max ?? 0;
}

/**
 * Changes tarn's pool size in place. tarn reads its `max` field at every create decision, so a
 * smaller one stops new connections at once (open ones are the caller's to retire); a larger
 * one is acted on here: tarn's acquire-or-create step runs once per added slot, and each run
 * either hands idle connections to waiting acquires or starts one connection for them (tarn
 * starts creates only for waiters, never beyond `max`). `min` is 0 in this layer, so no floor
 * can exceed the new size.
 */
export function setPoolMax(pool: TarnPool, max: number): void {
  const internals = pool as unknown as TarnInternals;
  const before = internals.max ?? 0;
  internals.max = max;
  if (typeof internals._tryAcquireOrCreate !== 'function') return;
  for (let i = before; i < max; i++) internals._tryAcquireOrCreate();
}

/** True when `connection` sits in tarn's free list (idle), as tarn's reaper sees it. */
export function isIdleInPool(pool: TarnPool, connection: DriverConnection): boolean {
  const free = (pool as unknown as TarnInternals).free;
  return Array.isArray(free) && free.some((r) => r.resource === connection);
}

/**
 * Marks a connection broken: knex's pool `validate` then drops it instead of handing it out
 * again. The first reason wins.
 */
export function markBroken(connection: DriverConnection, reason: unknown): void {
  connection.__knex__disposed ??= reason;
}

/** True once `markBroken` (or knex) marked the connection broken. */
export function isMarkedBroken(connection: DriverConnection): boolean {
  return connection.__knex__disposed !== undefined;
}

/** The socket broke or pg gave up on it (or it was marked broken): nothing more can be sent. */
export function isBroken(connection: DriverConnection): boolean {
  return (
    connection.__knex__disposed !== undefined ||
    connection._queryable === false ||
    connection._ending === true
  );
}

/** knex's lifetime limit of a connection (`maxConnectionLifetimeMillis`), on the performance.now() clock. */
export function lifetimeLimitOf(connection: DriverConnection): number | undefined {
  return connection.__knexLifetimeLimit;
}

/**
 * Calls `listener` with every ParameterStatus the server sends on `client` (at startup, and
 * whenever a reported setting changes: `in_hot_standby` at promotion, `default_transaction_read_only`
 * on a reload). pg's Client reads none of them itself; its `connection` emits each message by name.
 * Call before `connect()`. Returns false when pg no longer has that member (nothing is listened to).
 */
export function onParameterStatus(client: object, listener: (name: string, value: string) => void): boolean {
  const connection = (client as { connection?: { on?: unknown } }).connection;
  if (typeof connection?.on !== 'function') return false;
  (connection as { on(event: string, fn: (msg: unknown) => void): void }).on('parameterStatus', (msg) => {
    const { parameterName, parameterValue } = msg as { parameterName?: unknown; parameterValue?: unknown };
    if (typeof parameterName === 'string' && typeof parameterValue === 'string')
      listener(parameterName, parameterValue);
  });
  return true;
}

/** What the server asks for to authenticate, as `guardAuthentication` reports it. */
export type AuthRequest =
  | { kind: 'cleartext' }
  | { kind: 'md5' }
  /** AuthenticationSASL: the mechanisms the server offers. */
  | { kind: 'sasl'; mechanisms: readonly string[] }
  /** The mechanism pg chose, just before its SASLInitialResponse goes out. */
  | { kind: 'scram'; mechanism: string }
  /** AuthenticationOk: after an exchange, or at once (trust, certificate). */
  | { kind: 'ok' };

/** pg Client methods that answer each authentication request. */
const PG_AUTH_HANDLERS = {
  _handleAuthCleartextPassword: 'cleartext',
  _handleAuthMD5Password: 'md5',
  _handleAuthSASL: 'sasl',
} as const;

interface PgConnectionEvents {
  on(event: string, fn: (msg: unknown) => void): unknown;
  emit(event: string, arg: unknown): unknown;
  sendSASLInitialResponseMessage(mechanism: string, response: string): unknown;
  stream?: { destroy(): void };
}

/**
 * Lets `check` refuse an authentication request before pg answers it. pg has no hook for this:
 * its Client answers AuthenticationCleartextPassword, AuthenticationMD5Password and
 * AuthenticationSASL in `_handleAuthCleartextPassword`, `_handleAuthMD5Password` and
 * `_handleAuthSASL`, which `connect()` binds when it attaches its listeners, so overrides set on
 * the instance before `connect()` run instead of the prototype's. `check` also sees the SCRAM
 * mechanism pg chose (its `connection.sendSASLInitialResponseMessage`, wrapped on the instance)
 * and the server's AuthenticationOk (its `connection` emits it; the Client ignores it). An Error
 * returned by `check` fails `connect()` with it (pg's own path for a failed authentication
 * step) and destroys the socket, before pg writes any answer.
 * Call before `connect()`.
 * @returns false when pg lacks one of the members (nothing is guarded: the caller must not connect).
 */
export function guardAuthentication(client: object, check: (req: AuthRequest) => Error | undefined): boolean {
  const c = client as Record<string, unknown> & { connection?: Partial<PgConnectionEvents> };
  const connection = c.connection;
  if (
    typeof connection?.on !== 'function' ||
    typeof connection.emit !== 'function' ||
    typeof connection.sendSASLInitialResponseMessage !== 'function'
  )
    return false;
  const conn = connection as PgConnectionEvents;
  const entries = Object.entries(PG_AUTH_HANDLERS) as Array<
    [keyof typeof PG_AUTH_HANDLERS, 'cleartext' | 'md5' | 'sasl']
  >;
  if (entries.some(([method]) => typeof c[method] !== 'function')) return false;
  const refuse = (err: Error): void => {
    conn.emit('error', err);
    conn.stream?.destroy();
  };
  for (const [method, kind] of entries) {
    const original = c[method] as (msg: unknown) => unknown;
    c[method] = function (this: unknown, msg: unknown): unknown {
      const mechanisms = (msg as { mechanisms?: unknown } | undefined)?.mechanisms;
      const err = check(
        kind === 'sasl'
          ? { kind, mechanisms: Array.isArray(mechanisms) ? (mechanisms as string[]) : [] }
          : { kind },
      );
      if (err) return refuse(err);
      return original.call(this, msg);
    };
  }
  const sendInitial = conn.sendSASLInitialResponseMessage.bind(conn);
  conn.sendSASLInitialResponseMessage = (mechanism: string, response: string): unknown => {
    const err = check({ kind: 'scram', mechanism });
    if (err) return refuse(err);
    return sendInitial(mechanism, response);
  };
  conn.on('authenticationOk', () => {
    const err = check({ kind: 'ok' });
    if (err) refuse(err);
  });
  return true;
}

/** Abandons a connect still in progress (DNS, TLS): destroys its socket. */
export function abortConnect(connection: DriverConnection): void {
  connection.connection?.stream?.destroy();
}

/** What a CancelRequest needs: the backend and its secret, and where to send it. */
export function cancelTargetOf(
  connection: DriverConnection,
):
  | { host: string; port: number; processID: number; secretKey: number; ssl: false | ConnectionOptions }
  | undefined {
  const { processID, secretKey, host, port } = connection;
  if (!processID || secretKey === null || secretKey === undefined || !host || !port) return undefined;
  // pg keeps the `ssl` option its connection was opened with (false: plain, prefer's fallback included).
  const ssl = connection.ssl;
  return {
    host,
    port,
    processID,
    secretKey,
    ssl: ssl && typeof ssl === 'object' ? ssl : ssl === true ? {} : false,
  };
}

/** The name knex gave the savepoint open on `connection` (its transaction id), if any. */
export function savepointNameOf(connection: DriverConnection | undefined): string | undefined {
  return connection?.__knexTxId;
}

/**
 * Clears knex's transaction mark on a connection going back to the pool. Assigned, not
 * deleted: `delete` would turn the long-lived pg client into a slow dictionary-mode object.
 */
export function clearTransactionMark(connection: DriverConnection): void {
  connection.__knexTxId = undefined;
}

/** One idle connection as tarn keeps it in its free list. */
export interface IdleConnection {
  readonly connection: DriverConnection;
  /** When it went idle (returned or created), `Date.now()` ms: tarn's own timestamp. */
  readonly idleSince: number;
}

/**
 * The idle connections of `pool`, least recently used first (tarn hands out the most recently
 * returned one first, from the end of its free list). A copy: changing it changes nothing.
 */
export function idleConnectionsOf(pool: TarnPool): IdleConnection[] {
  const free = (pool as unknown as TarnInternals).free;
  if (!Array.isArray(free)) return [];
  return free.map((entry) => ({ connection: entry.resource, idleSince: entry.timestamp }));
}

/**
 * Closes the given idle connections the way tarn's own idle reaper does: each is taken out of
 * tarn's free list, its entry settled, then `_destroy`ed (which fires the pool's
 * `destroyRequest` event and closes the socket). `beforeClose` runs for each just before its
 * `destroyRequest`. Connections no longer idle (handed out meanwhile) are left alone.
 * Synchronous, so no acquire can pop the free list half-way. Never throws.
 * @returns how many were closed.
 */
export function closeIdleConnections(
  pool: TarnPool,
  connections: ReadonlySet<DriverConnection>,
  beforeClose: (connection: DriverConnection) => void = () => {},
): number {
  const internals = pool as unknown as TarnInternals;
  const free = internals.free;
  if (!Array.isArray(free) || typeof internals._destroy !== 'function' || connections.size === 0) return 0;
  const closing: TarnResource[] = [];
  for (let i = free.length - 1; i >= 0; i--) {
    const entry = free[i]!;
    if (!connections.has(entry.resource)) continue;
    free.splice(i, 1);
    closing.push(entry);
  }
  for (const entry of closing) {
    entry.settle();
    beforeClose(entry.resource);
    internals._destroy(entry.resource).catch(() => {});
  }
  return closing.length;
}

/**
 * Evicts every idle connection of knex's pool (after a failover, pg#2650): each is marked
 * broken first, so that knex's `validate` drops it should it still be handed out, then closed
 * as `closeIdleConnections` does. Synchronous. Never throws.
 * @returns how many idle connections were evicted.
 */
export function evictIdleConnections(knex: Knex, reason: string): number {
  const pool = clientOf(knex).pool;
  const free = (pool as unknown as TarnInternals | undefined)?.free;
  if (!pool || !Array.isArray(free)) return 0;
  for (const entry of free) markBroken(entry.resource, `evicted: ${reason}`);
  // Without tarn's destroy (another pool version), the marks alone make validate drop them.
  if (typeof (pool as unknown as TarnInternals)._destroy !== 'function') return free.length;
  return closeIdleConnections(pool, new Set(free.map((entry) => entry.resource)));
}

/** The SQL of a query as knex compiled it, and its bind values. */
export interface QueryText {
  sql: string | undefined;
  bindings: readonly unknown[] | undefined;
}

/**
 * Calls `annotate` with each failed pool checkout of a query outside a transaction (a builder,
 * `knex.raw`, objection) and the query's SQL and bindings, before the query rejects with it.
 * knex does this itself only for its own `KnexTimeoutError` (`err.sql`, `err.bindings`), which
 * the gate replaces. Installed as a subclass of knex's Runner returned by `client.runner`;
 * transactions' queries use their own client and are not affected. The SQL is compiled only
 * when a checkout failed.
 */
export function onQueryAcquireFailure(
  knex: Knex,
  annotate: (err: unknown, query: () => QueryText) => void,
): void {
  const client = clientOf(knex);
  acquireFailureAnnotators.set(client, annotate);
  const Runner = (client.runner(undefined) as object).constructor as new (
    client: unknown,
    builder: unknown,
  ) => KnexRunner;
  class AnnotatingRunner extends Runner {
    // Not async: every query outside a transaction passes here, and only a failure needs work.
    override ensureConnection(cb: unknown, params?: unknown): Promise<unknown> {
      return super.ensureConnection(cb, params).catch((err: unknown) => {
        annotate(err, () => queryTextOf(this.builder));
        throw err;
      });
    }
  }
  client.runner = (builder: unknown) => new AnnotatingRunner(client, builder);
}

/** The `onQueryAcquireFailure` callback of each root knex client, for `runStatement`'s checkouts. */
const acquireFailureAnnotators = new WeakMap<object, (err: unknown, query: () => QueryText) => void>();

/** `builder.toSQL()` as `QueryText` (several statements joined); empty when it cannot compile. */
function queryTextOf(builder: unknown): QueryText {
  try {
    const compiled = (builder as { toSQL(): unknown }).toSQL() as
      { sql: string; bindings?: unknown[] } | Array<{ sql: string; bindings?: unknown[] }>;
    const parts = Array.isArray(compiled) ? compiled : [compiled];
    return {
      sql: parts.map((p) => p.sql).join(';\n'),
      bindings: parts.flatMap((p) => p.bindings ?? []),
    };
  } catch {
    return { sql: undefined, bindings: undefined };
  }
}

/** A knex transaction's own COMMIT and ROLLBACK (RELEASE / ROLLBACK TO for a savepoint). */
export interface TransactionEnders {
  commit: () => Promise<RawResult | undefined>;
  rollback: (err: unknown) => Promise<RawResult | undefined>;
}

/**
 * knex's `trx.commit` and `trx.rollback`, kept before the manager replaces them on the
 * object. knex 3 defines them as arrow functions over its Transaction (they ignore `this`), so
 * the references are used as they are, unbound (`knex-internals.test.ts` pins it).
 */
export function transactionEnders(trx: Knex.Transaction): TransactionEnders {
  const t = trx as unknown as TransactionEnders;
  return { commit: t.commit, rollback: t.rollback };
}

/**
 * Replaces `trx.commit` and `trx.rollback` on knex's transaction object (the manager ends its
 * transactions itself: a `withTransaction` callback's are refused, `beginTx`'s go through the
 * manager). Take knex's own first with `transactionEnders`. knex 3 defines both as own
 * properties of the object; one missing means knex changed shape, and this throws.
 */
export function replaceTransactionEnds(
  trx: Knex.Transaction,
  ends: { commit: () => Promise<unknown>; rollback: () => Promise<unknown> },
): void {
  const t = trx as unknown as Record<string, unknown>;
  if (typeof t.commit !== 'function' || typeof t.rollback !== 'function')
    throw new Error("knex's transaction object has no commit/rollback to replace: knex changed shape.");
  t.commit = ends.commit;
  t.rollback = ends.rollback;
}

/** The statement knex 3 sends to commit a top-level transaction (`Transaction#commit`). */
const KNEX_COMMIT = 'COMMIT;';

/**
 * Makes knex's next own COMMIT on `trx` go out as `sql` instead (two-phase commit's
 * `PREPARE TRANSACTION 'gid'`). knex then ends its transaction exactly as after a COMMIT: marked
 * complete, `executionPromise` settled, a failure rejecting it; so the transaction object needs
 * no second, fake end. knex 3 sends its COMMIT as the plain string `'COMMIT;'` through the
 * transaction's own `client.query` (`knex-internals.test.ts` pins it); the swap is one-shot and
 * touches only this transaction's client.
 */
export function replaceNextCommit(trx: Knex.Transaction, sql: string): void {
  const client = (trx as unknown as { client: TxClient }).client;
  const query = client.query;
  client.query = (conn, obj) => {
    if (obj !== KNEX_COMMIT) return query.call(client, conn, obj);
    client.query = query;
    return query.call(client, conn, sql);
  };
}

/** Statements sent in the same message as knex's BEGIN, and who hears their answers. */
export interface BeginExtras {
  /** One or more statements, `;`-separated (no trailing `;` needed), with every value already a literal. */
  sql: string;
  /** Called with pg's results of the whole message (BEGIN's first) once it succeeded. */
  answer?: ((results: readonly RawResponse[]) => void) | undefined;
}

/** pg's Result of one statement. */
type RawResponse = NonNullable<RawResult['response']>;

/** knex's Transaction as `client.transaction()` returns it: its `query` sends BEGIN. */
type KnexTransactionObject = {
  query: (
    this: unknown,
    conn: unknown,
    sql: unknown,
    status?: unknown,
    value?: unknown,
  ) => Promise<RawResult | undefined>;
};
type TransactionFactory = (this: unknown, ...args: unknown[]) => KnexTransactionObject;

const pendingBegins = new WeakMap<object, BeginExtras>();
const beginPatched = new WeakSet<object>();
/** knex 3's BEGIN of a top-level pg transaction: `BEGIN;` or `BEGIN TRANSACTION ISOLATION LEVEL ... READ ONLY;`. */
const KNEX_BEGIN = /^BEGIN\b[^;]*;$/;

/**
 * Begins a top-level transaction on `config.connection` with `knex.transaction(null, config)`,
 * `extras` travelling in the same simple-query message as knex's BEGIN (no extra round trip).
 * knex 3 sends BEGIN as the first `Transaction#query` of the transaction object that its
 * client's `transaction()` returns, as a plain string (`knex-internals.test.ts` pins it); the
 * swap is one-shot and touches only that object. A BEGIN of another shape rejects (loudly,
 * never a BEGIN without the extras). A failure of any statement in the message fails BEGIN as
 * knex reports it: the transaction object arrives already complete, `executionPromise`
 * rejected with the error.
 */
export function beginTransactionWith(
  knex: Knex,
  config: Knex.TransactionConfig & { connection: object },
  extras: BeginExtras | undefined,
): Promise<Knex.Transaction> {
  if (extras === undefined) return knex.transaction(null, config);
  const client = knex.client as { transaction: TransactionFactory };
  const connection = config.connection as object;
  if (!beginPatched.has(client)) {
    beginPatched.add(client);
    const original = client.transaction;
    client.transaction = function (this: unknown, ...args: unknown[]): KnexTransactionObject {
      const t = original.apply(this, args);
      const on = (args[1] as { connection?: object } | undefined)?.connection;
      const pending = on && args[2] == null ? pendingBegins.get(on) : undefined;
      if (pending) {
        pendingBegins.delete(on!);
        const query = t.query;
        t.query = (conn, sql, status, value) => {
          t.query = query;
          if (typeof sql !== 'string' || !KNEX_BEGIN.test(sql))
            return Promise.reject(
              new Error(`knex's BEGIN changed shape (${String(sql)}): the layer cannot add to it.`),
            );
          return query.call(t, conn, `${sql} ${pending.sql}`, status, value).then((res) => {
            const response = res?.response as RawResponse | RawResponse[] | undefined;
            if (response !== undefined) pending.answer?.(Array.isArray(response) ? response : [response]);
            return res;
          });
        };
      }
      return t;
    };
  }
  pendingBegins.set(connection, extras);
  return knex.transaction(null, config).finally(() => pendingBegins.delete(connection));
}

/** The knex client private to one transaction (a plain object per transaction). */
export function transactionClientOf(trx: Knex.Transaction): object {
  return (trx as unknown as { client: object }).client;
}

/** What a transaction's statement interceptor sees and decides. */
export interface StatementInterceptor {
  /** Called for each statement of the callback (not knex's own BEGIN/COMMIT/...); returns the rejection or undefined to run it. */
  before(): Error | undefined;
  /** Receives the running statement's promise (to track it). */
  track<T>(p: Promise<T>): Promise<T>;
}

/**
 * Routes the statements of one knex transaction through `interceptor` (its client is private
 * to it: nothing else is affected). knex's own BEGIN/SAVEPOINT/COMMIT/ROLLBACK arrive as
 * plain strings and pass untouched.
 * @returns a function that runs an internal statement on the connection, bypassing the checks.
 */
export function interceptStatements(
  trx: Knex.Transaction,
  connection: unknown,
  interceptor: StatementInterceptor,
): (sql: string, bindings?: unknown[]) => Promise<RawResult> {
  const client = (trx as unknown as { client: TxClient }).client;
  // The originals are called with .call: no bound copies per transaction.
  const query = client.query;
  const stream = client.stream;
  client.query = (conn, obj) => {
    if (typeof obj === 'string') return query.call(client, conn, obj);
    const refused = interceptor.before();
    return refused ? Promise.reject(refused) : interceptor.track(query.call(client, conn, obj));
  };
  client.stream = (conn, obj, s, options) => {
    const refused = interceptor.before();
    return refused ? Promise.reject(refused) : interceptor.track(stream.call(client, conn, obj, s, options));
  };
  return (sql, bindings = []) =>
    query.call(client, connection, { sql, bindings, method: 'raw' }) as Promise<RawResult>;
}

/**
 * Runs `fn` on the pg client behind a knex transaction (its own connection: knex hands a
 * transaction's connection to every checkout inside it), for what knex cannot express, such
 * as `COPY ... FROM STDIN` through pg-copy-streams.
 */
export async function withDriverConnection<C, T>(
  trx: Knex.Transaction,
  fn: (connection: C) => Promise<T>,
): Promise<T> {
  const client = trx.client as unknown as KnexClient;
  const connection = (await client.acquireConnection()) as C;
  try {
    return await fn(connection);
  } finally {
    await client.releaseConnection(connection);
  }
}

/** A statement for {@link runStatement}: SQL with `$n` placeholders, its values, an optional prepared-statement name. */
export interface PreparedStatementText {
  /** `$1`-style SQL (knex's `toSQL().toNative()`), so knex's `?` rewriting finds nothing to do. */
  sql: string;
  bindings: readonly unknown[];
  /** pg prepares the statement once per connection under this name; unnamed when absent. */
  name?: string | undefined;
}

type StatementClient = KnexClient & {
  query(connection: unknown, obj: object): Promise<{ response: unknown }>;
  emit(event: string, ...args: unknown[]): boolean;
};

let statementSeq = 0;

/**
 * Runs one statement on `executor` (the pool's knex, or a knex transaction) the way knex's
 * Runner runs a `knex.raw`, without building a Raw and a Runner for it: the connection comes
 * from the executor's client (the pool's checkout through the gate and its hooks, or the
 * transaction's own connection, refused once the transaction ended), the statement goes
 * through the client's `query` (knex's `query` / `query-error` events, a transaction's
 * statement interceptor), and `query-response` is emitted as the Runner emits it, so the query
 * logger and tracer see it like any other. About 20 µs of client CPU less per statement than
 * `knex.raw(...)` (the Raw, its `toSQL`, the Runner and their promises).
 * @returns pg's Result.
 */
export async function runStatement(
  executor: Knex | Knex.Transaction,
  statement: PreparedStatementText,
): Promise<{ rows: unknown[]; rowCount: number | null }> {
  const client = executor.client as unknown as StatementClient;
  let connection: { __knexUid?: string; __knexTxId?: string };
  try {
    connection = (await client.acquireConnection()) as typeof connection;
  } catch (err) {
    acquireFailureAnnotators.get(client)?.(err, () => ({ sql: statement.sql, bindings: statement.bindings }));
    throw err;
  }
  try {
    const obj = {
      sql: statement.sql,
      bindings: [...statement.bindings],
      method: 'raw',
      ...(statement.name === undefined ? {} : { options: { name: statement.name } }),
      // knex's raw gives each run a nanoid; a counter is unique within the process too, and cheaper.
      __knexQueryUid: `pgdl-${++statementSeq}`,
    };
    const { response } = await client.query(connection, obj);
    client.emit(
      'query-response',
      response,
      { __knexUid: connection.__knexUid, __knexTxId: connection.__knexTxId, ...obj },
      undefined,
    );
    return response as { rows: unknown[]; rowCount: number | null };
  } finally {
    await client.releaseConnection(connection);
  }
}
