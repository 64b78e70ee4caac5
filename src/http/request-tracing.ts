import {
  context,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/**
 * Makes each HTTP request a SERVER span, the parent of every span made while it is handled
 * (its transactions, statements, pool checkouts), after OpenTelemetry's HTTP semantic
 * conventions. Installed only when tracing is on; without it the server has none of these hooks.
 *
 * - Continues the caller's trace when the request carries a `traceparent` header (the
 *   propagator the application's SDK registered; none registered: a new trace).
 * - Name `METHOD /route/:param` (the route template, never the values); attributes
 *   `http.request.method`, `url.path` (without the query string, which is not recorded: it
 *   carries values), `url.scheme`, `http.route`, then `http.response.status_code`.
 * - A 5xx answer: status ERROR and `error.type` = the status code (a 4xx is the client's).
 *
 * Must be installed before the hooks that enter other async contexts, so that everything after
 * it runs inside the span's context (`done` is called inside `context.with`).
 */
export function installRequestTracing(app: FastifyInstance, tracer: Tracer): void {
  const spans = new WeakMap<FastifyRequest, Span>();
  const end = (request: FastifyRequest, statusCode: number | undefined): void => {
    const span = spans.get(request);
    if (span === undefined) return;
    spans.delete(request);
    if (statusCode !== undefined) {
      span.setAttribute('http.response.status_code', statusCode);
      if (statusCode >= 500) {
        span.setAttribute('error.type', String(statusCode));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
    }
    span.end();
  };

  // Callback style: `done` inside context.with makes the later hooks and the handler run in it.
  app.addHook('onRequest', (request, _reply, done) => {
    const parent = propagation.extract(context.active(), request.headers);
    const route = request.routeOptions.url;
    const query = request.url.indexOf('?');
    const attributes: Attributes = {
      'http.request.method': request.method,
      'url.path': query === -1 ? request.url : request.url.slice(0, query),
      'url.scheme': request.protocol,
    };
    if (route !== undefined) attributes['http.route'] = route;
    const name = route === undefined ? request.method : `${request.method} ${route}`;
    const span = tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
    spans.set(request, span);
    context.with(trace.setSpan(parent, span), done);
  });
  app.addHook('onResponse', (request, reply, done) => {
    end(request, reply.statusCode);
    done();
  });
  // The client went away before the answer: onResponse may never come.
  app.addHook('onRequestAbort', (request, done) => {
    end(request, undefined);
    done();
  });
}
