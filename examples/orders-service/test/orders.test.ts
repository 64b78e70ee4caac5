import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import { PostgresDatabase, createLogger, type Logger } from 'pg-data-layer';
import { withRollback, type TestDatabase } from 'pg-data-layer/testing';
import { buildApp } from '../src/app.js';
import { loadServiceConfig } from '../src/config.js';
import { testServer } from './setup.js';

describe('orders service', () => {
  let database: TestDatabase;
  let db: PostgresDatabase;
  let app: FastifyInstance;
  let logger: Logger;

  before(async () => {
    database = await testServer().createDatabase();
    const config = loadServiceConfig({ env: { APP_ENV: 'test' } });
    logger = createLogger(config.log);
    db = new PostgresDatabase(database.config(), logger);
    app = await buildApp(db, logger, config.orders);
  });
  after(async () => {
    await app.close();
    await db.close();
    await database.drop();
  });

  it('starts from the seeded orders', async () => {
    const res = await app.inject('/orders/1');
    expect(res.statusCode).to.equal(200);
    expect(res.json()).to.include({ customer: 'ada', item: 'notebook', quantity: 2 });
  });

  it('places an order inside a rolled-back test: visible during the test, gone after it', async () => {
    let id = '';
    await withRollback(db, async () => {
      const created = await app.inject({
        method: 'POST',
        url: '/orders',
        payload: { customer: 'alan', item: 'tape', quantity: 3 },
      });
      expect(created.statusCode).to.equal(201);
      id = (created.json() as { id: string }).id;
      const added = await app.inject({ method: 'POST', url: `/orders/${id}/add-one` });
      expect(added.json()).to.include({ quantity: 4, version: 2 });
    });
    expect((await app.inject(`/orders/${id}`)).statusCode).to.equal(404);
  });

  it('maps the layer typed errors to problem responses', async () => {
    await withRollback(db, async () => {
      const duplicate = await app.inject({
        method: 'POST',
        url: '/orders',
        payload: { customer: 'ada', item: 'notebook', quantity: 1 },
      });
      expect(duplicate.statusCode).to.equal(409);
      expect(duplicate.json()).to.include({ code: 'DUPLICATE' });
    });
    const missing = await app.inject('/orders/999999');
    expect(missing.statusCode).to.equal(404);
    expect(missing.json()).to.include({ code: 'NOT_FOUND' });
    expect((await app.inject('/readyz')).statusCode).to.equal(200);
  });
});
