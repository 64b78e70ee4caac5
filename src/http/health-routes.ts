import type { FastifyInstance } from 'fastify';
import type { HealthService } from '../health/health-service.js';

const readinessSchema = {
  type: 'object',
  properties: {
    ready: { type: 'boolean' },
    reason: { type: 'string' },
    database: { type: 'string' },
    breaker: { type: 'string' },
    draining: { type: 'boolean' },
  },
} as const;

/**
 * Registers the probes:
 * - `GET /healthz` liveness: the process answers; touches no database, never fails while
 *   the event loop runs (a database outage must not get the pod restarted).
 * - `GET /readyz` readiness: 200 only when the last health check was up, the breaker is
 *   closed and the service is not draining; else 503 with `{ ready: false, reason }`.
 *   Reads in-memory state only.
 * - `GET /health`: a fresh `HealthReport` (pool stats, latency, server version, breaker
 *   state) plus migration status; 200 when the database is up, 503 when down.
 */
export function registerHealthRoutes(
  app: FastifyInstance,
  health: HealthService,
  only: Record<HealthRouteSet, boolean> = { probes: true, health: true },
): void {
  if (only.probes) registerProbes(app, health);
  if (only.health)
    app.get('/health', async (_request, reply) => {
      const report = await health.report();
      return reply.code(report.status === 'up' ? 200 : 503).send(report);
    });
}

/** The route groups: `probes` (`/healthz`, `/readyz`) and `health` (the detailed `/health`). */
export type HealthRouteSet = 'probes' | 'health';

function registerProbes(app: FastifyInstance, health: HealthService): void {
  app.get(
    '/healthz',
    {
      logLevel: 'warn',
      schema: { response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } },
    },
    () => Promise.resolve({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    { logLevel: 'warn', schema: { response: { 200: readinessSchema, 503: readinessSchema } } },
    async (_request, reply) => {
      const r = health.readiness();
      return reply.code(r.ready ? 200 : 503).send(r);
    },
  );
}
