import { expect } from 'chai';
import Fastify, { type FastifyInstance } from 'fastify';
import { NotFoundError } from '../../../src/db/index.js';
import { dataLayerPlugin } from '../../../src/fastify/index.js';
import { withRollback } from '../../../src/testing/index.js';
import { UserRepository } from '../../../src/users/user-repository.js';
import { useDatabases } from '../../support/postgres-database-helpers.js';
import { useTestDatabase } from '../../support/test-database.js';

describe('dataLayerPlugin (pg-data-layer/fastify)', () => {
  const database = useTestDatabase();
  const open = useDatabases();
  const apps: FastifyInstance[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  /** A service's own app: its own routes beside the plugin's. */
  async function serviceApp(options: { routes?: { metrics?: boolean; health?: boolean } } = {}) {
    const { db, log } = open(database().config());
    const users = new UserRepository(db.driver());
    const app = Fastify({ logger: false });
    apps.push(app);
    await app.register(dataLayerPlugin, {
      db,
      logger: log.logger,
      healthCheck: { intervalMs: 60_000 },
      ...options,
    });
    app.get<{ Params: { email: string } }>('/people/:email', async (request) => {
      const user = await users.findByEmail(request.params.email);
      if (!user) throw new NotFoundError({ message: 'no such person' });
      return { name: user.name };
    });
    app.post<{ Body: { email: string; name: string } }>('/people', async (request, reply) => {
      const user = await db.withTransaction(() => users.create(request.body));
      return reply.code(201).send({ id: user.id });
    });
    await app.ready();
    return { app, db };
  }

  it('serves the probes and the health report, and the layer metrics, beside the service routes', async () => {
    const { app, db } = await serviceApp();
    expect(app.dataLayer.db).to.equal(db);
    expect((await app.inject('/healthz')).json()).to.deep.equal({ status: 'ok' });
    const ready = await app.inject('/readyz');
    expect(ready.statusCode).to.equal(200);
    expect(ready.json()).to.include({ ready: true, database: 'up', breaker: 'closed' });
    const health = await app.inject('/health');
    expect(health.statusCode).to.equal(200);
    expect(health.json()).to.include({ status: 'up' });
    expect(health.json()).to.have.nested.property('pool.maxOpenConnections', 5);
    await app.inject('/people/ada@example.com');
    const metrics = await app.inject('/metrics');
    expect(metrics.statusCode).to.equal(200);
    expect(metrics.body).to.match(/^db_query_duration_seconds_count(\{[^}]*\})? [1-9]/m);
  });

  it('maps the layer typed errors thrown by the service routes to problem responses', async () => {
    const { app } = await serviceApp();
    const missing = await app.inject('/people/nobody@example.com');
    expect(missing.statusCode).to.equal(404);
    expect(missing.json()).to.include({ statusCode: 404, code: 'NOT_FOUND' });
    const first = await app.inject({
      method: 'POST',
      url: '/people',
      payload: { email: 'x@example.com', name: 'X' },
    });
    expect(first.statusCode).to.equal(201);
    const duplicate = await app.inject({
      method: 'POST',
      url: '/people',
      payload: { email: 'x@example.com', name: 'Y' },
    });
    expect(duplicate.statusCode).to.equal(409);
    expect(duplicate.json()).to.include({ code: 'DUPLICATE' });
    expect(duplicate.body).not.to.match(/users_email|insert into/i);
    const unknownRoute = await app.inject('/nothing-here');
    expect(unknownRoute.statusCode).to.equal(404);
    expect(unknownRoute.json()).to.include({ code: 'NOT_FOUND' });
  });

  it('registers only the route groups asked for', async () => {
    const { app } = await serviceApp({ routes: { metrics: false, health: false } });
    expect((await app.inject('/metrics')).statusCode).to.equal(404);
    expect((await app.inject('/health')).statusCode).to.equal(404);
    expect((await app.inject('/readyz')).statusCode).to.equal(200);
  });

  it('turns readiness off when the app starts closing', async () => {
    const { app } = await serviceApp();
    expect(app.dataLayer.health.readiness()).to.include({ ready: true });
    await app.close();
    expect(app.dataLayer.health.readiness()).to.include({ ready: false, reason: 'draining' });
  });

  it('runs a request inside withRollback: the route sees the test data, nothing survives', async () => {
    const { app, db } = await serviceApp();
    await withRollback(db, async () => {
      const created = await app.inject({
        method: 'POST',
        url: '/people',
        payload: { email: 'sandboxed@example.com', name: 'Sandboxed' },
      });
      expect(created.statusCode).to.equal(201);
      const read = await app.inject('/people/sandboxed@example.com');
      expect(read.json()).to.deep.equal({ name: 'Sandboxed' });
    });
    expect((await app.inject('/people/sandboxed@example.com')).statusCode).to.equal(404);
  });
});
