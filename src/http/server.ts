import { randomUUID } from 'node:crypto';
import type { Tracer } from '@opentelemetry/api';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { ServerConfig } from '../config/app-config.js';
import type { HealthService } from '../health/health-service.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { dataLayerPlugin, type PluginDatabase } from './data-layer-plugin.js';
import { installBodyTimeouts, nodeServerOptions, type HttpTimeouts } from './http-timeouts.js';
import { InvalidUtf8Error } from './request-errors.js';
import { invalidUtf8Offset, strictUtf8Decoder } from './utf8.js';
import { installRequestTracing } from './request-tracing.js';

/** What the HTTP layer needs from the layers below. */
export interface ServerDeps {
  /** Body limit and timeouts; absent timeouts are Node's defaults and no body bounds. */
  server: Pick<ServerConfig, 'bodyLimit'> & Partial<HttpTimeouts>;
  logger: Logger;
  db: PluginDatabase;
  health: HealthService;
  metrics: Metrics;
  /** Registers feature routes (e.g. the users API) inside the same error handling. */
  routes?: ReadonlyArray<(app: FastifyInstance) => void>;
  /** Each request a SERVER span (`installRequestTracing`); absent: tracing off, no hook. */
  tracer?: Tracer | undefined;
}

/** A client-supplied request id is kept when it is short and plain; otherwise a fresh UUID. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Builds the Fastify application (not yet listening).
 *
 * - Shares the application's pino logger: every request log line carries `reqId`, taken
 *   from a well-formed `x-request-id` header or generated, and echoed in the
 *   `x-request-id` response header.
 * - `bodyLimit` from config (413 above it). Only `application/json` is parsed by default
 *   (Fastify's `text/plain` parser is removed: anything else is 415), as strict UTF-8 (an
 *   invalid byte is a 400 naming its offset, never U+FFFD).
 * - Timeouts (`server.headersTimeout`, `keepAliveTimeout`, `requestTimeout`, `bodyTimeout`):
 *   see `nodeServerOptions` and `installBodyTimeouts`; a request too slow is 408 and its
 *   connection closed.
 * - Validation is strict: no type coercion of bodies, no silent removal of unknown
 *   properties (`additionalProperties: false` gives 400), all errors reported at once.
 * - The data layer's Fastify plugin (`dataLayerPlugin`, what a service of its own registers):
 *   the probes, `/health`, `/metrics`, the one error handler (see `error-handler.ts`) and the
 *   request context; then the feature routes.
 * - While draining, in-flight responses carry `Connection: close`; while closing, new
 *   requests on kept-alive connections get 503 with `Connection: close`.
 */
export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const timeouts = httpTimeouts(deps.server);
  const node = timeouts ? nodeServerOptions(timeouts) : undefined;
  const app = Fastify({
    ...(node && {
      http: node,
      requestTimeout: node.requestTimeout,
      keepAliveTimeout: node.keepAliveTimeout,
    }),
    // pino's Logger is wider than Fastify's base type; keep the instance type the default one
    // (without the cast, FastifyInstance<..., pino.Logger> does not fit route registrars).
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: deps.logger.child({ component: 'http' }) as FastifyBaseLogger,
    bodyLimit: deps.server.bodyLimit,
    // Not `requestIdHeader`: that would take any header value verbatim; genReqId checks it.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true, useDefaults: true },
    },
  });
  app.removeContentTypeParser('text/plain');
  installStrictJsonParser(app, deps.server.bodyLimit);
  // Fastify treats 0 as "its default" (72 s keep-alive); the configured value is Node's own.
  if (node) app.server.keepAliveTimeout = node.keepAliveTimeout;
  if (timeouts) installBodyTimeouts(app, timeouts);
  if (deps.tracer) installRequestTracing(app, deps.tracer);
  // Callback style: an async hook would cost a promise (and its hooks) per response.
  app.addHook('onSend', (request, reply, payload, done) => {
    void reply.header('x-request-id', String(request.id));
    // A response finished while draining closes its connection, so the server can close.
    if (deps.health.draining) void reply.header('connection', 'close');
    done(null, payload);
  });
  await app.register(dataLayerPlugin, { db: deps.db, metrics: deps.metrics, health: deps.health });
  for (const register of deps.routes ?? []) register(app);
  return app;
}

/** The timeouts when all are configured (the service always configures them). */
function httpTimeouts(server: ServerDeps['server']): HttpTimeouts | undefined {
  const { requestTimeout, headersTimeout, keepAliveTimeout, bodyTimeout } = server;
  if (
    requestTimeout === undefined ||
    headersTimeout === undefined ||
    keepAliveTimeout === undefined ||
    bodyTimeout === undefined ||
    server.import === undefined
  )
    return undefined;
  return { requestTimeout, headersTimeout, keepAliveTimeout, bodyTimeout, import: server.import };
}

/**
 * Fastify's JSON parser, fed through a fatal UTF-8 decoder: Fastify's own reads the body as a
 * string, so an invalid byte became U+FFFD and was stored. `__proto__` and `constructor` keys
 * are kept as ordinary own properties (`JSON.parse` makes them plain data, never a prototype)
 * so that the strict body schemas reject them as unknown fields with a 400 naming them, the
 * same answer any other unknown field gets; every route with a JSON body has such a schema.
 */
function installStrictJsonParser(app: FastifyInstance, bodyLimit: number): void {
  const parseJson = app.getDefaultJsonParser('ignore', 'ignore');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit }, (request, body, done) => {
    const bytes = body as Buffer;
    let text: string;
    try {
      text = strictUtf8Decoder().decode(bytes);
    } catch {
      done(new InvalidUtf8Error(invalidUtf8Offset(bytes)), undefined);
      return;
    }
    void parseJson(request, text, done);
  });
}
