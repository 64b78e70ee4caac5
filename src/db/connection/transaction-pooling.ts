import type pg from 'pg';
import type { PostgresConfig } from '../../config/app-config.js';
import type { Logger } from '../../observability/logger.js';
import { cancelTargetOf, markBroken, type DriverConnection } from '../knex-internals.js';
import { sendCancelRequest } from './cancel-request.js';
import { transactionLocalSettings } from './pg-connection-config.js';

/**
 * A message that opens a transaction block (knex sends `BEGIN;` or `BEGIN TRANSACTION ...;`,
 * which the transaction manager may follow with more statements): the BEGIN, then the rest.
 */
const BEGIN_STATEMENT = /^\s*((?:BEGIN|START\s+TRANSACTION)\b[^;]*)(?:;\s*(.*))?$/is;
/** Bound on delivering the client-side statement timeout's cancel request, ms. */
const CANCEL_TIMEOUT_MS = 1_000;

type QueryCallback = (err: Error | null, res?: unknown) => void;
type QueryConfig = { text?: unknown; values?: unknown; name?: unknown; submit?: unknown };
type QueryFn = (config: unknown, values?: unknown, callback?: unknown) => unknown;

/**
 * Makes one pg client safe behind PgBouncer in transaction pooling mode (`poolerMode:
 * 'transaction'`), where every transaction, and every statement outside one, may run on a
 * different server connection that other clients share. Wraps the client's `query` (the one
 * method knex, the probe and the lost-COMMIT lookup send through); the startup packet already
 * carries no `options` (`startupOptions`). Hand-written: no pg or knex option does any of this.
 *
 * - **No named prepared statements**: a query's `name` is dropped, so pg sends it unnamed (a
 *   name lives in one server session: PgBouncer 1.18 would run the next Execute on another).
 * - **Limits inside transactions**: a `BEGIN` sent while the session is idle gets
 *   `SET LOCAL statement_timeout = ...; SET LOCAL lock_timeout = ...; SET LOCAL
 *   idle_in_transaction_session_timeout = ...` appended, in the same simple-query message (one
 *   round trip, as `BEGIN` alone); they end with the transaction, so nothing is left on the
 *   server connection. The caller sees BEGIN's own result. A deadline's `set_config(..., true)`
 *   after BEGIN (TxManager's `timeoutMs`) still overrides them, as it overrides the session
 *   settings in direct mode.
 * - **statementTimeout outside transactions**: a statement sent while the session is idle (an
 *   autocommit statement) arms a timer of `statementTimeout`; if it is still running then, a
 *   CancelRequest goes to PgBouncer, which forwards it to the server connection running it, and
 *   the statement fails with 57014 (`StatementTimeoutError`). The client is then marked broken
 *   (the pool opens a new one: cheap, PgBouncer keeps its server connections), so no later
 *   statement of this client can meet the cancel. `lockTimeout` has no client-side equivalent
 *   outside a transaction (the client cannot tell a lock wait from work): such a lock wait is
 *   bounded by `statementTimeout` (docs/scale-out.md). Submittable queries (cursors, COPY
 *   streams) are passed through untouched.
 */
export function installTransactionPooling(client: pg.Client, cfg: PostgresConfig, logger: Logger): void {
  const suffix = transactionLocalSettings(cfg);
  const suffixCount = suffix === undefined ? 0 : suffix.split(';').length;
  const statementTimeoutMs = Number.isFinite(cfg.statementTimeout) ? Math.floor(cfg.statementTimeout) : 0;
  const original = client.query.bind(client) as QueryFn;
  const idle = (): boolean => client.getTransactionStatus() === 'I';

  const wrapped: QueryFn = (config, values, callback) => {
    if (config === null || config === undefined) return original(config, values, callback);
    if (typeof config === 'object' && typeof (config as QueryConfig).submit === 'function')
      return original(config, values, callback);
    const cb = (typeof values === 'function' ? values : callback) as QueryCallback | undefined;
    const vals = typeof values === 'function' ? undefined : values;
    let query: QueryConfig = typeof config === 'string' ? { text: config } : config;
    if (query.name !== undefined) {
      const { name: _dropped, ...unnamed } = query;
      query = unnamed;
    }
    const text = typeof query.text === 'string' ? query.text : '';
    const params = vals ?? query.values;
    const noParams = params === undefined || (Array.isArray(params) && params.length === 0);
    let begin = false;
    const opening = suffix !== undefined && noParams && idle() ? BEGIN_STATEMENT.exec(text) : null;
    // What followed the BEGIN in the caller's message (its results are the caller's too).
    const rest = opening?.[2]?.trim() ?? '';
    if (opening) {
      begin = true;
      query = { ...query, text: `${opening[1]!.trim()}; ${suffix}${rest === '' ? '' : `; ${rest}`}` };
    }
    const timed = !begin && statementTimeoutMs > 0 && idle();
    const run = (done: QueryCallback): void => {
      let timer: NodeJS.Timeout | undefined;
      let cancelled = false;
      if (timed)
        timer = setTimeout(() => {
          cancelled = true;
          cancelStatement(client, statementTimeoutMs, logger);
        }, statementTimeoutMs);
      original(query, vals, (err: Error | null, res?: unknown) => {
        clearTimeout(timer);
        if (err && cancelled && (err as { code?: unknown }).code === '57014')
          err.message = statementTimeoutMessage(statementTimeoutMs, err.message);
        // BEGIN plus the SET LOCALs answer with one result each: the caller asked for BEGIN's
        // (and those of the statements it sent after BEGIN).
        done(err, begin && Array.isArray(res) ? callersResults(res, suffixCount, rest !== '') : res);
      });
    };
    if (cb) {
      run(cb);
      return undefined;
    }
    return new Promise((resolve, reject) => run((err, res) => (err ? reject(err) : resolve(res))));
  };
  (client as unknown as { query: QueryFn }).query = wrapped;
}

/** The results of the caller's own statements in a BEGIN message the suffix was added to. */
function callersResults(res: unknown[], suffixCount: number, more: boolean): unknown {
  if (!more) return res[0];
  return [res[0], ...res.slice(1 + suffixCount)];
}

/**
 * The client-side statement timeout fired: cancel the statement through PgBouncer and retire
 * the client (marked broken: the pool drops it when it comes back), so the cancel can never
 * meet a later statement of this client.
 */
function cancelStatement(client: pg.Client, timeoutMs: number, logger: Logger): void {
  const conn = client as unknown as DriverConnection;
  markBroken(conn, `statementTimeout (${timeoutMs} ms) reached outside a transaction; cancelled`);
  const target = cancelTargetOf(conn);
  if (!target) {
    // No key to cancel with: closing the connection makes PgBouncer close the server one.
    client.end().catch(() => {});
    return;
  }
  sendCancelRequest(target, CANCEL_TIMEOUT_MS).catch((err: unknown) => {
    logger.warn(
      { err: { message: (err as Error).message } },
      'statementTimeout: the cancel request failed; closing the connection instead',
    );
    client.end().catch(() => {});
  });
}

function statementTimeoutMessage(timeoutMs: number, original: string): string {
  return `${original} (statementTimeout of ${timeoutMs} ms, enforced by the client in poolerMode=transaction)`;
}
