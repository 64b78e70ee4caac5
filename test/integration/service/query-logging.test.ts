import { expect } from 'chai';
import { useTestDatabase } from '../../support/test-database.js';
import type { LogLine } from '../../support/capture-logger.js';
import { startTestService, testConfig, type TestService } from '../../support/service-fixture.js';

const SECRET_NAME = 'Name-With-Personal-Data-42';

describe('Query logging', () => {
  const db = useTestDatabase();
  const services: TestService[] = [];

  afterEach(async () => {
    for (const s of services.splice(0)) await s.stop();
  });

  async function start(log: { queryBindings: boolean; slowQueryThreshold: number }): Promise<TestService> {
    const previous = process.env.LOG_LEVEL;
    process.env.LOG_LEVEL = 'debug';
    try {
      const svc = await startTestService(testConfig(db().url, { log }));
      services.push(svc);
      return svc;
    } finally {
      if (previous === undefined) delete process.env.LOG_LEVEL;
      else process.env.LOG_LEVEL = previous;
    }
  }

  async function createUser(svc: TestService, email: string, reqId: string): Promise<LogLine[]> {
    const res = await fetch(`${svc.url}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': reqId },
      body: JSON.stringify({ email, name: SECRET_NAME }),
    });
    expect(res.status).to.equal(201);
    return svc.logs.filter((l) => l.component === 'query' && l.reqId === reqId);
  }

  it('logs one debug line per statement with its duration and request id, without bind values', async () => {
    const svc = await start({ queryBindings: false, slowQueryThreshold: 10_000 });
    const started = performance.now();
    const lines = await createUser(svc, 'query-log-1@example.com', 'req-query-1');
    const requestMs = performance.now() - started;
    const insert = lines.find((l) => /insert into "users"/i.test(String(l.sql)));
    expect(insert, JSON.stringify(lines)).to.include({ level: 20, msg: 'query', reqId: 'req-query-1' });
    // A real round trip, timed inside the request that sent it.
    expect(insert!.durationMs).to.be.greaterThan(0).and.at.most(requestMs);
    expect(insert).not.to.have.property('bindings');
    expect(JSON.stringify(svc.logs)).not.to.include(SECRET_NAME);
  });

  it('logs bind values only when log.queryBindings is on', async () => {
    const svc = await start({ queryBindings: true, slowQueryThreshold: 10_000 });
    const lines = await createUser(svc, 'query-log-2@example.com', 'req-query-2');
    const insert = lines.find((l) => /insert into "users"/i.test(String(l.sql)));
    expect(insert?.bindings).to.include(SECRET_NAME);
  });

  it('logs statements slower than slowQueryThreshold at warn', async () => {
    const svc = await start({ queryBindings: false, slowQueryThreshold: 50 });
    await svc.service.db.driver().raw('select pg_sleep(0.1)');
    const slow = svc.logs.find((l) => l.component === 'query' && /pg_sleep/.test(String(l.sql)));
    expect(slow).to.include({ level: 40, msg: 'slow query' });
    expect(slow!.durationMs).to.be.at.least(100);
  });
});
