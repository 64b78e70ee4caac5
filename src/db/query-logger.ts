import type { Knex } from 'knex';
import { onQueryEvents, type QueryEvent } from './query-events.js';
import type { LogConfig } from '../config/app-config.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/** The query-logging settings, a subset of `LogConfig`. */
export type QueryLogConfig = Pick<LogConfig, 'queryBindings' | 'slowQueryThreshold'>;

/**
 * Attaches per-statement logging and timing to a knex instance (its `query`,
 * `query-response` and `query-error` events, which also fire for statements run inside
 * transactions).
 *
 * Contract:
 * - One `debug` line per statement with its SQL text (placeholders, not values) and
 *   duration in ms; a `warn` line instead when it took longer than `slowQueryThreshold` ms.
 * - A failed statement logs at debug with its SQLSTATE; the error itself is reported by
 *   whoever handles it, once.
 * - Bind values and server error messages (which can echo values, e.g. `invalid input
 *   syntax for type integer: "..."`) are logged only when `queryBindings` is true: they
 *   carry personal data and secrets.
 * - Every statement's duration feeds `metrics.queryDuration` (seconds).
 * - `context()` adds fields to every line (the composition root passes the current HTTP
 *   request's `{ reqId }`); the database layer itself knows nothing of requests.
 *
 * @returns a function that detaches the listeners.
 */
export function attachQueryLogger(
  knex: Knex,
  logger: Logger,
  cfg: QueryLogConfig,
  metrics?: Metrics,
  context?: () => Record<string, unknown> | undefined,
): () => void {
  const log = logger.child({ component: 'query' });
  // Start times by query uid; an entry lives from 'query' to its response or error.
  const started = new Map<string, number>();

  const fieldsOf = (q: QueryEvent, durationMs: number): Record<string, unknown> => {
    const fields: Record<string, unknown> = {
      ...context?.(),
      sql: q.sql,
      durationMs: Math.round(durationMs * 100) / 100,
    };
    if (q.__knexTxId) fields.txId = q.__knexTxId;
    if (cfg.queryBindings && q.bindings?.length) fields.bindings = q.bindings;
    return fields;
  };
  const elapsed = (q: QueryEvent): number => {
    const uid = q.__knexQueryUid;
    const t0 = uid === undefined ? undefined : started.get(uid);
    if (uid !== undefined) started.delete(uid);
    const ms = t0 === undefined ? 0 : performance.now() - t0;
    metrics?.queryDuration.observe(ms / 1000);
    return ms;
  };

  const onQuery = (q: QueryEvent): void => {
    if (q.__knexQueryUid !== undefined) started.set(q.__knexQueryUid, performance.now());
  };
  const onResponse = (_response: unknown, q: QueryEvent): void => {
    const ms = elapsed(q);
    if (ms > cfg.slowQueryThreshold) log.warn(fieldsOf(q, ms), 'slow query');
    else if (log.isLevelEnabled('debug')) log.debug(fieldsOf(q, ms), 'query');
  };
  const onError = (err: unknown, q: QueryEvent): void => {
    const ms = elapsed(q);
    if (!log.isLevelEnabled('debug') && ms <= cfg.slowQueryThreshold) return;
    const fields = fieldsOf(q, ms);
    const e = err as { code?: unknown; message?: unknown } | undefined;
    fields.sqlState = typeof e?.code === 'string' ? e.code : undefined;
    if (cfg.queryBindings && typeof e?.message === 'string') fields.error = e.message;
    if (ms > cfg.slowQueryThreshold) log.warn(fields, 'slow query failed');
    else log.debug(fields, 'query failed');
  };

  const unsubscribe = onQueryEvents(knex, { onQuery, onResponse, onError });
  return () => {
    unsubscribe();
    started.clear();
  };
}
