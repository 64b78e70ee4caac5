import { Transform, type Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { ServerConfig } from '../config/app-config.js';
import { RequestTimeoutError } from './request-errors.js';

/** The timeout settings the HTTP layer reads (`server.*`, ms; 0 = none unless noted). */
export type HttpTimeouts = Pick<
  ServerConfig,
  'requestTimeout' | 'headersTimeout' | 'keepAliveTimeout' | 'bodyTimeout'
> & { import: Pick<ServerConfig['import'], 'timeout'> };

/** Route config flag of a route that reads its body as a stream and bounds it itself (the import). */
export const STREAMED_BODY = 'streamedBody';

/**
 * Node's own limits for the server (`http.createServer` options), in two layers:
 *
 * - `headersTimeout` and `keepAliveTimeout` are Node's, as configured.
 * - Node's `requestTimeout` covers the whole request of *every* route, and an import is one
 *   long streamed body that `server.import.timeout` bounds instead. So Node's is only the
 *   backstop, the larger of the two (0 when either is 0: an unbounded import must stay
 *   possible); the ordinary `server.requestTimeout` and `server.bodyTimeout` are enforced per
 *   request by {@link installBodyTimeouts}, which exempts the import route.
 * - `connectionsCheckingInterval` (Node: 30 s) is how often Node looks for expired headers and
 *   requests; a quarter of the shortest such timeout, 100 ms..30 s, keeps it close to them.
 */
export function nodeServerOptions(t: HttpTimeouts): {
  headersTimeout: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  connectionsCheckingInterval: number;
} {
  const requestTimeout =
    t.requestTimeout > 0 && t.import.timeout > 0 ? Math.max(t.requestTimeout, t.import.timeout) : 0;
  // Node refuses headersTimeout > requestTimeout; the backstop is never the tighter one anyway.
  const headersTimeout = requestTimeout > 0 ? Math.min(t.headersTimeout, requestTimeout) : t.headersTimeout;
  const shortest = Math.min(...[headersTimeout, requestTimeout].filter((ms) => ms > 0), 120_000);
  return {
    headersTimeout,
    requestTimeout,
    keepAliveTimeout: t.keepAliveTimeout,
    connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(shortest / 4))),
  };
}

/**
 * Bounds the body of every request except the streamed-body routes (`config.streamedBody`):
 * the whole request within `requestTimeout` of its start, and no gap between two body chunks
 * longer than `bodyTimeout`. Past either, the body stream fails with `RequestTimeoutError`
 * (408, `Connection: close`: the rest of the body is never read). Requests without a body,
 * or with one already received whole, are not wrapped.
 */
export function installBodyTimeouts(
  app: FastifyInstance,
  t: Pick<HttpTimeouts, 'requestTimeout' | 'bodyTimeout'>,
): void {
  if (t.requestTimeout <= 0 && t.bodyTimeout <= 0) return;
  app.addHook('preParsing', (request, reply, payload, done) => {
    const config = request.routeOptions.config as unknown as Record<string, unknown> | undefined;
    // No body (HTTP: neither Content-Length nor Transfer-Encoding), already whole, or streamed.
    const { headers } = request;
    const hasBody = headers['content-length'] !== undefined || headers['transfer-encoding'] !== undefined;
    if (!hasBody || request.raw.complete || config?.[STREAMED_BODY] === true) {
      done(null, payload);
      return;
    }
    const guarded = new BodyGuard(payload, t, reply.elapsedTime, () => {
      void reply.header('connection', 'close');
    });
    // Once the response is done (or the client gone) no bound matters any more: a timer firing
    // then would fail a stream nobody reads.
    reply.raw.once('close', () => guarded.stopTimers());
    done(null, guarded as unknown as typeof payload);
  });
}

/** Passes a body through, failing it when the request or gap timeout passes. */
class BodyGuard extends Transform {
  #total: NodeJS.Timeout | undefined;
  #gap: NodeJS.Timeout | undefined;

  constructor(
    source: Readable,
    t: Pick<HttpTimeouts, 'requestTimeout' | 'bodyTimeout'>,
    elapsedMs: number,
    onTimeout: () => void,
  ) {
    super();
    const fail = (limit: 'request' | 'body-gap', bound: number): void => {
      this.#clear();
      onTimeout();
      // Not `pipeline`: destroying the request stream would destroy the socket before the 408.
      source.unpipe(this);
      this.destroy(new RequestTimeoutError(limit, bound));
    };
    if (t.requestTimeout > 0) {
      this.#total = setTimeout(
        () => fail('request', t.requestTimeout),
        Math.max(0, t.requestTimeout - elapsedMs),
      );
    }
    if (t.bodyTimeout > 0) this.#gap = setTimeout(() => fail('body-gap', t.bodyTimeout), t.bodyTimeout);
    source.on('error', (err) => this.destroy(err));
    // The parser may have stopped listening (e.g. after the body limit): never an unhandled 'error'.
    this.on('error', () => {});
    source.pipe(this);
  }

  /** Cancels both bounds (the response is done). */
  stopTimers(): void {
    this.#clear();
  }

  override _transform(
    chunk: Buffer,
    _enc: BufferEncoding,
    callback: (err: null, chunk: Buffer) => void,
  ): void {
    this.#gap?.refresh();
    callback(null, chunk);
  }

  override _flush(callback: () => void): void {
    this.#clear();
    callback();
  }

  override _destroy(err: Error | null, callback: (err: Error | null) => void): void {
    this.#clear();
    callback(err);
  }

  #clear(): void {
    clearTimeout(this.#total);
    clearTimeout(this.#gap);
  }
}
