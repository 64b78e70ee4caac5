import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger, PostgresDatabase } from 'pg-data-layer';
import { dataLayerPlugin } from 'pg-data-layer/fastify';
import { OrderRepository } from './order-repository.js';
import { OrderService } from './order-service.js';

/**
 * The service's Fastify app: the layer's plugin (probes, /health, /metrics, the typed-error
 * handler) beside the service's own routes.
 */
export async function buildApp(
  db: PostgresDatabase,
  logger: Logger,
  limits: { maxItemsPerOrder: number },
): Promise<FastifyInstance> {
  const orders = new OrderService(new OrderRepository(db.driver()), db.txManager, limits);
  // pino's Logger is wider than Fastify's base logger type; the default instance type keeps route modules simple.
  const app = Fastify({ loggerInstance: logger as FastifyBaseLogger });
  await app.register(dataLayerPlugin, { db });

  app.post<{ Body: { customer: string; item: string; quantity: number } }>(
    '/orders',
    {
      schema: {
        body: {
          type: 'object',
          required: ['customer', 'item', 'quantity'],
          additionalProperties: false,
          properties: {
            customer: { type: 'string' },
            item: { type: 'string' },
            quantity: { type: 'integer' },
          },
        },
      },
    },
    async (request, reply) => reply.code(201).send(await orders.place(request.body)),
  );
  app.get<{ Params: { id: string } }>('/orders/:id', (request) => orders.get(request.params.id));
  app.post<{ Params: { id: string } }>('/orders/:id/add-one', (request) => orders.addOne(request.params.id));
  return app;
}
