import { trace, type Tracer } from '@opentelemetry/api';

/** The instrumentation scope (tracer name) of the spans this project makes. */
const TRACER_NAME = 'pg-data-layer';

/**
 * How the data layer traces with OpenTelemetry: the object form of the `tracing` option of
 * `PostgresDatabaseOptions` and `TxManagerOptions` (`true` means `{}`; config
 * `observability.tracing` for the service). See docs/observability.md.
 *
 * Tracing is opt-in: with `tracing` absent or false, the layer makes no OpenTelemetry call at
 * all, whatever SDK the application registered. With it on and no SDK registered, the spans
 * are the API's no-ops (they cost little, and nothing is recorded).
 */
export interface TracingOptions {
  /**
   * Where spans go. Default: the tracer named `pg-data-layer` of the global tracer provider,
   * i.e. the application's SDK (`NodeSDK`); taken once, and it follows a provider registered
   * later.
   */
  tracer?: Tracer;
  /**
   * Per-statement spans made from knex's query events (read by `PostgresDatabase`; a bare
   * `TxManager` makes none). Default true. Set false when the application traces statements
   * itself with `@opentelemetry/instrumentation-pg` (or `-knex`): its spans then nest under
   * this layer's transaction spans, and there is one span per statement, not two.
   */
  statements?: boolean;
}

/** The tracer `option` asks for, or undefined when tracing is off (absent or false). */
export function tracerOf(option: boolean | TracingOptions | undefined): Tracer | undefined {
  if (option === undefined || option === false) return undefined;
  if (option === true || option.tracer === undefined) return trace.getTracer(TRACER_NAME);
  return option.tracer;
}
