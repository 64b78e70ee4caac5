import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../observability/metrics.js';

/**
 * Registers `GET /metrics`: the Prometheus text exposition of `metrics.registry` (pool
 * gauges read live at scrape time, transaction/retry/breaker/health counters, process
 * defaults when the registry was built with them). Touches no database.
 */
export function registerMetricsRoutes(app: FastifyInstance, metrics: Metrics): void {
  app.get('/metrics', { logLevel: 'warn' }, async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
}
