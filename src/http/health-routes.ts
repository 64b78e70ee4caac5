import type { FastifyInstance } from 'fastify';
import type { HealthService } from '../health/health-service.js';
import type {} from './auth/auth-user.js'; // the route config's `scope` and `public`

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

/** Which routes {@link registerHealthRoutes} registers. */
export interface HealthRoutesOptions {
  /** `/healthz` and `/readyz`. */
  probes: boolean;
  /**
   * `true`: `/health` is the full report, and needs the `users:admin` scope where
   * authentication is on; `'minimal'`: `/health` says only `{ status }`, open to everyone (the
   * public listener when an admin listener serves the detailed one); `false`: no `/health`.
   */
  health: boolean | 'minimal';
}

/**
 * Registers the probes (open to everyone: `config.public`):
 * - `GET /healthz` liveness: the process answers; touches no database, never fails while
 *   the event loop runs (a database outage must not get the pod restarted).
 * - `GET /readyz` readiness: 200 only when the last health check was up, the breaker is
 *   closed and the service is not draining; else 503 with `{ ready: false, reason }`.
 *   Reads in-memory state only.
 * - `GET /health`: a fresh `HealthReport` (pool stats, latency, server version, breaker
 *   state) plus migration status; 200 when the database is up, 503 when down. Minimal
 *   (`only.health: 'minimal'`): `{ status: 'up' | 'down' }` only, same status codes.
 */
export function registerHealthRoutes(
  app: FastifyInstance,
  health: HealthService,
  only: HealthRoutesOptions = { probes: true, health: true },
): void {
  if (only.probes) registerProbes(app, health);
  if (only.health === 'minimal') {
    app.get(
      '/health',
      { config: { public: true }, schema: { response: { 200: minimalSchema, 503: minimalSchema } } },
      async (_request, reply) => {
        const { status } = await health.report();
        return reply.code(status === 'up' ? 200 : 503).send({ status });
      },
    );
  } else if (only.health) {
    app.get('/health', { config: { scope: 'users:admin' } }, async (_request, reply) => {
      const report = await health.report();
      return reply.code(report.status === 'up' ? 200 : 503).send(report);
    });
  }
}

/** The route groups: `probes` (`/healthz`, `/readyz`) and `health` (the detailed `/health`). */
export type HealthRouteSet = 'probes' | 'health';

const minimalSchema = { type: 'object', properties: { status: { type: 'string' } } } as const;

function registerProbes(app: FastifyInstance, health: HealthService): void {
  app.get(
    '/healthz',
    {
      config: { public: true },
      logLevel: 'warn',
      schema: { response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } },
    },
    () => Promise.resolve({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      config: { public: true },
      logLevel: 'warn',
      schema: { response: { 200: readinessSchema, 503: readinessSchema } },
    },
    async (_request, reply) => {
      const r = health.readiness();
      return reply.code(r.ready ? 200 : 503).send(r);
    },
  );
}
