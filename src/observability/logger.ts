import { createRequire } from 'node:module';
import { pino } from 'pino';
import type { LogConfig } from '../config/app-config.js';
import { REDACTED } from '../config/redact-config.js';
import { serializeRequest } from './capped-request.js';
import { scrubSecrets } from './scrub-secrets.js';

/**
 * pino-pretty is optional at run time (a dev dependency), so it is required lazily through this;
 * named `require` so that tools following require calls (knip) see the dependency.
 */
const require = createRequire(import.meta.url);

/** The logger every component takes (pino); give each one `logger.child({ component })`. */
export type Logger = pino.Logger;

/** What a redacted value is replaced with (one constant, shared with `redactConfig`). */
export { REDACTED };

export { scrubSecrets };

/**
 * Object paths pino removes from every log line before it is written (fast-redact syntax):
 * passwords at the depths our objects put them, connection strings and URL-shaped settings,
 * the HTTP headers that carry credentials, and the bind values an error may carry
 * (`PoolExhaustedError.bindings` is non-enumerable, so pino's error serializer skips it anyway;
 * knex's own errors carry them enumerable). The query logger's `bindings` field
 * (`log.queryBindings`, off by default) is not covered, on purpose. Anything these paths miss, such as a URL with a
 * password inside `err.message`, is caught by `scrubSecrets()` on the finished line.
 */
export const REDACT_PATHS: readonly string[] = [
  'password',
  '*.password',
  '*.*.password',
  '*.*.*.password',
  'connectionString',
  '*.connectionString',
  '*.*.connectionString',
  'databaseUrl',
  '*.databaseUrl',
  'DATABASE_URL',
  '*.DATABASE_URL',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  'res.headers["set-cookie"]',
  'err.bindings',
  'error.bindings',
  '*.err.bindings',
];

/** Options of {@link createLogger} beyond the log config. */
export interface CreateLoggerOptions {
  /**
   * Fields added to every line, computed as the line is written: the composition root passes
   * the current HTTP request's `{ reqId }` (read from an AsyncLocalStorage), so lines written
   * anywhere below a request (transaction retries, breaker transitions, queries) carry it
   * without the logger knowing about HTTP. A key the line already has, as its own field or as
   * a binding of a child logger (Fastify's request logger binds `reqId`), wins, so no key
   * appears twice. Returning undefined adds nothing. Called once per written line, and never
   * for a line below the level: keep it cheap. Default: none.
   */
  mixin?: () => Record<string, unknown> | undefined;
}

/**
 * Creates the application's logger: pino, JSON lines by default, pino-pretty (a worker-thread
 * transport) when `cfg.pretty`. Secrets are removed twice: `REDACT_PATHS` on the logged objects,
 * then `scrubSecrets()` on each finished line (message, `err.message`, `err.stack`, any field).
 * A logged `req` (Fastify's request lines) shows its client-sent fields cut to
 * `MAX_LOGGED_FIELD` characters (see `serializeRequest`).
 * `cfg.queryBindings` and `cfg.slowQueryThreshold` are for the database layer to read; the
 * logger itself does not use them. pino-pretty is a development dependency: keep `pretty`
 * off in production (the production default); where it is not installed, `pretty` falls back
 * to JSON lines with one warning.
 *
 * @param destination Where lines go instead of stdout (tests capture output this way). With
 *   `pretty`, lines are prettified synchronously into it.
 * @param options A `mixin` of per-line context fields (see `CreateLoggerOptions`).
 *
 * @example
 * ```ts
 * const logger = createLogger(config.log);
 * logger.child({ component: 'database' }).info({ host }, 'connected');
 * ```
 */
export function createLogger(
  cfg: LogConfig,
  destination?: pino.DestinationStream,
  { mixin }: CreateLoggerOptions = {},
): Logger {
  const options: pino.LoggerOptions = {
    level: cfg.level,
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err, req: serializeRequest },
    timestamp: pino.stdTimeFunctions.isoTime,
    hooks: { streamWrite: scrubSecrets },
    ...(mixin ? { mixin: contextMixin(mixin) } : {}),
  };
  if (cfg.pretty && isInstalled('pino-pretty')) {
    if (destination) return pino(options, prettyStream(destination));
    return pino({ ...options, transport: { target: 'pino-pretty', options: PRETTY_OPTIONS } });
  }
  const logger = destination ? pino(options, destination) : pino(options);
  if (cfg.pretty) {
    // A production install (npm ci --omit=dev) run with pretty on: readable lines are a
    // convenience, not a reason to refuse to start.
    logger.warn(
      'log.pretty is on but pino-pretty (a development dependency) is not installed: writing JSON lines',
    );
  }
  return logger;
}

/**
 * Whether `name` resolves from here. `resolve` replaces `require.resolve` (tests pass one
 * that fails, as on a production install).
 */
export function isInstalled(name: string, resolve: (id: string) => string = require.resolve): boolean {
  try {
    resolve(name);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return false;
    throw err;
  }
}

/**
 * Adapts a context function to pino's `mixin`. pino lets the line's own fields override the
 * mixin's, but not a child's bindings (they are pre-serialized), so keys bound by the logger
 * writing the line are left out here.
 */
function contextMixin(
  context: () => Record<string, unknown> | undefined,
): NonNullable<pino.LoggerOptions['mixin']> {
  return (_line, _level, logger) => {
    const fields = context();
    if (!fields) return {};
    const bound = logger.bindings();
    const added: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(fields)) if (!(key in bound)) added[key] = value;
    return added;
  };
}

const PRETTY_OPTIONS = { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' };

/** A synchronous pino-pretty stream; loaded lazily because pino-pretty is a dev dependency. */
function prettyStream(destination: pino.DestinationStream): pino.DestinationStream {
  const build = require('pino-pretty') as (opts: object) => pino.DestinationStream;
  return build({ ...PRETTY_OPTIONS, colorize: false, sync: true, destination });
}
