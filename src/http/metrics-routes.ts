import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../observability/metrics.js';
import type {} from './auth/auth-user.js'; // the route config's `scope` and `public`

/**
 * Registers `GET /metrics`: the Prometheus text exposition of `metrics.registry` (pool
 * gauges read live at scrape time, transaction/retry/breaker/health counters, process
 * defaults when the registry was built with them). Touches no database. Needs the `users:admin`
 * scope where authentication is on (the admin listener has none).
 */
export function registerMetricsRoutes(app: FastifyInstance, metrics: Metrics): void {
  app.get('/metrics', { logLevel: 'warn', config: { scope: 'users:admin' } }, async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
}
