import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { HealthService } from '../health/health-service.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { dataLayerPlugin, type PluginDatabase } from './data-layer-plugin.js';

/** What the admin listener serves. */
export interface AdminServerDeps {
  db: PluginDatabase;
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
 * It is the data layer's plugin sharing the public app's `HealthService` (one health loop).
 */
export async function buildAdminServer(deps: AdminServerDeps): Promise<FastifyInstance> {
  const app = Fastify({
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: deps.logger.child({ component: 'admin-http' }) as FastifyBaseLogger,
    return503OnClosing: true,
  });
  await app.register(dataLayerPlugin, {
    db: deps.db,
    metrics: deps.metrics,
    health: deps.health,
    routes: { probes: false },
  });
  return app;
}
