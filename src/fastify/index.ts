/**
 * `pg-data-layer/fastify`: the data layer's HTTP pieces for a service's own Fastify app
 * (docs/service.md, "In your own Fastify app").
 */
export { dataLayerPlugin } from '../http/data-layer-plugin.js';
export { errorResponse } from '../http/error-handler.js';
export { createServiceLogger } from '../http/service-logger.js';

export type {
  DataLayerPluginOptions,
  DataLayerDecoration,
  PluginDatabase,
} from '../http/data-layer-plugin.js';
export type { ErrorBody, ErrorResponse } from '../http/error-handler.js';
