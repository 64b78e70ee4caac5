import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../observability/metrics.js';

/**
 * Counts every response in `http_requests_total` and times it in `http_request_duration_seconds`
 * (labels: method, route pattern, status code), for the error-ratio alert and the dashboard.
 * The route is the pattern (`/users/:id`), never the raw URL, so a client cannot grow the label
 * set; a request that matched no route is `unmatched`.
 */
export function installHttpMetrics(app: FastifyInstance, metrics: Metrics): void {
  // Callback style: an async hook would cost a promise (and its hooks) per response.
  app.addHook('onResponse', (request, reply, done) => {
    const labels = {
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status_code: String(reply.statusCode),
    };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
    done();
  });
}
