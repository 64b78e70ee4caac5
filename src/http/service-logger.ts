import type { DestinationStream } from 'pino';
import type { LogConfig } from '../config/app-config.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { currentRequestFields } from './request-context.js';

/**
 * The service's logger: `createLogger` whose every line written while an HTTP request is
 * handled carries that request's `reqId` (transaction retries, breaker transitions, queries,
 * not only Fastify's own lines). The request context lives in the HTTP layer, so this wiring
 * belongs to the HTTP layer: the logger itself knows nothing of HTTP.
 *
 * @param destination Where lines go instead of stdout (see `createLogger`).
 */
export function createServiceLogger(cfg: LogConfig, destination?: DestinationStream): Logger {
  return createLogger(cfg, destination, { mixin: currentRequestFields });
}
