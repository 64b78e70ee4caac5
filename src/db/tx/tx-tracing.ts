import {
  context,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import type { Knex } from 'knex';
import type { TxOutcome } from '../../observability/metrics.js';
import { classifyTxError } from '../errors/classify-error.js';
import { dbSpanAttributes, failureAttributes } from '../span-attributes.js';
import type { CommitOutcome } from './lost-commit.js';
import type { ResolvedTxOptions } from './tx-options.js';
import { retryReason, type RetryRunOptions } from './tx-runner.js';

/**
 * The spans of one TxManager's outermost transactions (`withTransaction` at the top level, or
 * with `requiresNew`), built only when tracing is on: a manager without it holds none, and its
 * transactions make no OpenTelemetry call.
 *
 * One INTERNAL span `db.transaction` per transaction, retries included, a child of the span
 * active at the call. The callback runs in its context, so the statement and pool-acquire spans
 * and the application's own spans inside it are its children. Attributes: the database's
 * (`db.system.name`, `db.namespace`, `server.*`), and this layer's `pgdl.transaction.*`:
 * `isolation_level`, `read_only`, `deferrable`, `propagation`, `max_attempts`, `timeout_ms`,
 * then `attempts`, `outcome` (the `TxEndInfo.outcome`) and `retry_vetoed`. Events: `retry` per
 * retry (attempt, delay, reason, SQLSTATE), `commit_lookup` when a lost COMMIT was looked up.
 * Failure: status ERROR, `error.type` = the class of the error the caller receives.
 */
export class TxTracing {
  readonly #tracer: Tracer;
  readonly #driver: () => Knex;
  #dbAttributes: Attributes | undefined;

  /** `driver`: the manager's knex (read on the first transaction, for the server's attributes). */
  constructor(tracer: Tracer, driver: () => Knex) {
    this.#tracer = tracer;
    this.#driver = driver;
  }

  /** Starts the transaction's span and runs `body` in its context; `body` ends it (`TxSpan.end`). */
  run<T>(o: ResolvedTxOptions, body: (span: TxSpan) => Promise<T>): Promise<T> {
    const attributes: Attributes = {
      ...(this.#dbAttributes ??= dbSpanAttributes(this.#driver())),
      'pgdl.transaction.isolation_level': o.isolationLevel ?? 'default',
      'pgdl.transaction.read_only': o.readOnly,
      'pgdl.transaction.deferrable': o.deferrable,
      'pgdl.transaction.propagation': o.propagation,
      'pgdl.transaction.max_attempts': o.retry.maxAttempts,
    };
    if (o.timeoutMs !== undefined) attributes['pgdl.transaction.timeout_ms'] = o.timeoutMs;
    const parent = context.active();
    const span = this.#tracer.startSpan('db.transaction', { kind: SpanKind.INTERNAL, attributes }, parent);
    return context.with(trace.setSpan(parent, span), body, undefined, new TxSpan(span, o.readOnly));
  }

  /**
   * Adds a `commit_lookup` event (what `pg_xact_status` said of a lost COMMIT) to the active
   * span: the transaction's for `withTransaction`, the caller's for a `beginTx()` handle.
   */
  commitLookedUp(outcome: CommitOutcome): void {
    trace.getActiveSpan()?.addEvent('commit_lookup', { 'pgdl.commit_lookup.outcome': outcome });
  }
}

/** One traced transaction: its span, ended once with the outcome. */
export class TxSpan {
  readonly #span: Span;
  readonly #ctx: { declaredReadOnly: boolean };

  constructor(span: Span, declaredReadOnly: boolean) {
    this.#span = span;
    this.#ctx = { declaredReadOnly };
  }

  /** `rules` that also add a `retry` event to the span before each retry's wait. */
  retrying(rules: RetryRunOptions): RetryRunOptions {
    return {
      ...rules,
      onRetry: (info) => {
        rules.onRetry?.(info);
        const verdict = classifyTxError(info.error, this.#ctx);
        this.#span.addEvent('retry', {
          'pgdl.retry.attempt': info.attempt,
          'pgdl.retry.delay_ms': Math.round(info.delayMs * 100) / 100,
          'pgdl.retry.reason': retryReason(info.error, verdict),
          ...failureAttributes(info.error, true),
        });
      },
    };
  }

  /** Records the outcome (status ERROR unless committed) and ends the span. */
  end(outcome: TxOutcome, attempts: number, error: unknown, retryVetoed: boolean): void {
    const span = this.#span;
    span.setAttribute('pgdl.transaction.outcome', outcome);
    span.setAttribute('pgdl.transaction.attempts', attempts);
    if (retryVetoed) span.setAttribute('pgdl.transaction.retry_vetoed', true);
    if (outcome !== 'committed') {
      span.setAttributes(failureAttributes(error));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  }
}
