import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { HealthService } from '../health/health-service.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { installErrorHandler } from './error-handler.js';
import { registerHealthRoutes } from './health-routes.js';
import { registerMetricsRoutes } from './metrics-routes.js';

/** What the admin listener serves. */
export interface AdminServerDeps {
  logger: Logger;
  health: HealthService;
  metrics: Metrics;
}

/**
 * Builds the admin listener's application (not yet listening): `GET /metrics` and the detailed
 * `GET /health`, and nothing else, without authentication: it listens on
 * `server.admin.host:server.admin.port` (loopback by default), which only the operators'
 * network reaches (in Kubernetes, the Prometheus scrape; see docs/deployment.md). Its log lines
 * carry `component: 'admin-http'`; errors get the same problem bodies as the public listener.
 */
export function buildAdminServer(deps: AdminServerDeps): FastifyInstance {
  const app = Fastify({
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: deps.logger.child({ component: 'admin-http' }) as FastifyBaseLogger,
    return503OnClosing: true,
  });
  installErrorHandler(app);
  registerHealthRoutes(app, deps.health, { probes: false });
  registerMetricsRoutes(app, deps.metrics);
  return app;
}
