import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { AuthConfig } from '../config/app-config.js';
import type { BreakerState, CircuitBreaker, Database } from '../db/index.js';
import { HealthLoop } from '../health/health-loop.js';
import { HealthRepository } from '../health/health-repository.js';
import { HealthService } from '../health/health-service.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { JwtVerifier } from './auth/jwt-verifier.js';
import { registerAuth } from './auth/register-auth.js';
import { installErrorHandler, installNotFoundHandler } from './error-handler.js';
import { registerHealthRoutes, type HealthRouteSet } from './health-routes.js';
import { installHttpMetrics } from './http-metrics.js';
import { registerMetricsRoutes } from './metrics-routes.js';
import { requestContext } from './request-context.js';

/** What the plugin needs of a database: a `PostgresDatabase` has it all. */
export type PluginDatabase = Pick<Database, 'health' | 'getConnectionStats' | 'driver'> & {
  /** Its counters, served by `GET /metrics` when `metrics` is not given. */
  readonly metrics?: Metrics;
};

/** Options of {@link dataLayerPlugin}. */
export interface DataLayerPluginOptions {
  db: PluginDatabase;
  /** The registry `GET /metrics` serves; default `db.metrics`. */
  metrics?: Metrics;
  /**
   * Readiness is 503 while it is not closed, and a `CircuitBreaker` is fed every health check;
   * default: a breaker that is always closed.
   */
  breaker?: Pick<CircuitBreaker, 'state' | 'recordHealth'> | { readonly state: BreakerState };
  /** Health-loop lines; default Fastify's own logger. */
  logger?: Logger;
  /**
   * A `HealthService` to share (e.g. the public app's, on an admin listener); the plugin then
   * runs no health loop of its own. Default: the plugin builds one from `healthCheck`.
   */
  health?: HealthService;
  healthCheck?: {
    /** Period of the background health check, ms; default 5000. */
    intervalMs?: number;
    /** `/health` answers are reused this long, ms; default 1000. */
    reportCacheTtlMs?: number;
    /** Not ready once the pool is saturated this long, ms; default 0 (never). */
    poolSaturatedForMs?: number;
    /** The migrations `/health` reports against; default none reported. */
    migrations?: { directory: string; tableName?: string };
  };
  /**
   * Which routes to register: `probes` (`/healthz`, `/readyz`), `health` (the detailed
   * `/health`; `'minimal'`: a public `/health` that says only `{ status }`, for a public app
   * whose admin listener serves the detailed one), `metrics` (`/metrics`). Default all three
   * (`metrics` only with a registry).
   */
  routes?: Partial<Record<Exclude<HealthRouteSet, 'health'> | 'metrics', boolean>> & {
    health?: boolean | 'minimal';
  };
  /**
   * Bearer-JWT authentication, deny by default (`registerAuth`), installed before the plugin's
   * routes so that they and every route the app registers afterwards are covered: the probes
   * are public, `/health` and `/metrics` need `users:admin`, the app's routes declare
   * `config.scope` or `config.public`. `config` is `server.auth` (mode `none`: no checks);
   * `profile` says whether mode `none` is worth a warning (default: it is). Default: none.
   * Registering the plugin then throws `ConfigError` when mode `jwt` has no key.
   */
  auth?: { config: AuthConfig; profile?: string; verifier?: JwtVerifier };
  /**
   * Count every response in `metrics` (`http_requests_total`, `http_request_duration_seconds`
   * by method, route pattern and status code: the error-ratio alert and the dashboard read
   * them); default true when there is a registry.
   */
  httpMetrics?: boolean;
  /** Install the error handler that maps the layer's typed errors to problem responses; default true. */
  errorHandler?: boolean;
  /** Install the JSON 404 for unknown routes; default true (turn off when the app has its own). */
  notFoundHandler?: boolean;
}

/** What the plugin decorates the Fastify instance with, as `app.dataLayer`. */
export interface DataLayerDecoration {
  db: PluginDatabase;
  health: HealthService;
  metrics: Metrics | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    dataLayer: DataLayerDecoration;
  }
}

const plugin: FastifyPluginAsync<DataLayerPluginOptions> = async (app, opts) => {
  const metrics = opts.metrics ?? opts.db.metrics;
  const breaker = opts.breaker ?? { state: 'closed' as const };
  const logger = opts.logger ?? (app.log as unknown as Logger);
  let health = opts.health;
  if (!health) {
    const check = opts.healthCheck ?? {};
    const loop = new HealthLoop(opts.db, {
      intervalMs: check.intervalMs ?? 5_000,
      logger,
      ...(opts.breaker && 'recordHealth' in opts.breaker && { breaker: opts.breaker }),
    });
    const migrations = check.migrations;
    const repository =
      migrations &&
      new HealthRepository(opts.db, {
        migrationsDirectory: migrations.directory,
        ...(migrations.tableName && { migrationsTable: migrations.tableName }),
      });
    health = new HealthService({
      db: opts.db,
      loop,
      breaker,
      ...(repository && { migrationStatus: () => repository.migrationStatus() }),
      reportCacheTtlMs: check.reportCacheTtlMs ?? 1_000,
      poolStats: () => opts.db.getConnectionStats(),
      poolSaturatedForMs: check.poolSaturatedForMs ?? 0,
    });
    await loop.checkNow();
    loop.start();
    const owned = health;
    app.addHook('preClose', (done) => {
      owned.startDraining();
      done();
    });
    app.addHook('onClose', async () => loop.stop());
  }
  app.decorate('dataLayer', { db: opts.db, health, metrics });

  // Every later hook and the handler run inside the request's context, so the layer's log
  // lines (queries, retries) carry its reqId through `createServiceLogger`'s mixin. Callback
  // style on purpose: an async hook would leave the store behind.
  app.addHook('onRequest', (request, _reply, done) => {
    requestContext.run({ reqId: String(request.id) }, done);
  });
  if (metrics && opts.httpMetrics !== false) installHttpMetrics(app, metrics);
  if (opts.errorHandler !== false) installErrorHandler(app);
  if (opts.notFoundHandler !== false) installNotFoundHandler(app);
  if (opts.auth) {
    const { config, profile, verifier } = opts.auth;
    registerAuth(app, config, { logger, ...(profile && { profile }), ...(verifier && { verifier }) });
  }
  const routes = opts.routes ?? {};
  const detail = routes.health === 'minimal' ? 'minimal' : routes.health !== false;
  registerHealthRoutes(app, health, { probes: routes.probes !== false, health: detail });
  if (metrics && routes.metrics !== false) registerMetricsRoutes(app, metrics);
};

/**
 * The data layer's HTTP pieces as a Fastify plugin (wrapped with `fastify-plugin`, so its
 * error handler and decorator reach the app that registers it):
 * - `GET /healthz` (liveness, no database), `GET /readyz` (the last background health
 *   check, the breaker, pool saturation, draining) and `GET /health` (a detailed report);
 * - `GET /metrics` (Prometheus text of `metrics`, default `db.metrics`), and every response
 *   counted and timed in it (`http_requests_total`, `http_request_duration_seconds`);
 * - the error handler that maps the layer's typed errors to the problem responses of
 *   docs/service.md (404, 409 `DUPLICATE`/`CONFLICT`, 412, 503 with `Retry-After`...), and
 *   a JSON 404 for unknown routes;
 * - each request's id in an AsyncLocalStorage, for log lines written while it runs;
 * - with `auth`, deny-by-default bearer-JWT authentication of every route (`registerAuth`);
 * - `app.dataLayer` (`db`, `health`, `metrics`); readiness turns 503 when the app starts
 *   closing, and the health loop stops with it. The database itself stays the caller's to close.
 *
 * @example
 * ```ts
 * const app = Fastify({ loggerInstance: logger });
 * await app.register(dataLayerPlugin, { db });
 * app.get('/orders/:id', { schema }, (req) => orders.get(req.params.id)); // NotFoundError -> 404
 * await app.listen({ port: 8080 });
 * ```
 */
export const dataLayerPlugin = fp(plugin, { fastify: '5.x', name: 'pg-data-layer' });
