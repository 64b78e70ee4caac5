import { expect } from 'chai';
import { withPgClient } from '../../../src/db/connection/with-pg-client.js';
import { metricValue } from '../../support/metric-value.js';
import { useTestDatabase } from '../../support/test-database.js';
import { useTestService } from '../../support/service-fixture.js';

/** The session statement_timeout of the service's connections in this suite, ms. */
const STATEMENT_TIMEOUT_MS = 300;

describe('Users API reads', () => {
  const db = useTestDatabase();
  const svc = useTestService(db, { database: { postgres: { statementTimeout: STATEMENT_TIMEOUT_MS } } });

  /** The SQL of every statement knex sends while `fn` runs. */
  async function statementsOf(fn: () => Promise<void>): Promise<string[]> {
    const sent: string[] = [];
    const onQuery = (q: { sql?: string }): void => void sent.push(String(q.sql));
    const knex = svc().service.db.driver();
    knex.on('query', onQuery);
    try {
      await fn();
    } finally {
      knex.off('query', onQuery);
    }
    return sent;
  }

  it('reads a user and a page with one statement each, without a transaction', async () => {
    const metrics = svc().service.metrics;
    const startedBefore = await metricValue(metrics.txStarted);
    const sent = await statementsOf(async () => {
      const one = await fetch(`${svc().url}/users/1`);
      expect(one.status).to.equal(200);
      expect(one.headers.get('etag')).to.match(/^"[1-9][0-9]*"$/);
      const page = await fetch(`${svc().url}/users?limit=2`);
      expect(page.status).to.equal(200);
      expect(((await page.json()) as { items: unknown[] }).items).to.have.length(2);
    });
    expect(sent).to.have.length(2);
    expect(
      sent.every((sql) => /^select /.test(sql)),
      sent.join('\n'),
    ).to.equal(true);
    expect(await metricValue(metrics.txStarted)).to.equal(startedBefore);
  });

  it("answers 503 TIMEOUT when a read outlives the session's statement_timeout, and the breaker stays closed", async () => {
    await withPgClient(db().url, async (locker) => {
      // A read waits behind an ACCESS EXCLUSIVE lock until statement_timeout cancels it.
      await locker.query('begin');
      await locker.query('lock table users in access exclusive mode');
      try {
        for (const path of ['/users/1', '/users?limit=2']) {
          const t0 = performance.now();
          const res = await fetch(`${svc().url}${path}`);
          const elapsedMs = performance.now() - t0;
          const body = (await res.json()) as { code: string };
          expect(res.status, JSON.stringify(body)).to.equal(503);
          expect(body.code).to.equal('TIMEOUT');
          expect(res.headers.get('retry-after')).to.match(/^[1-9][0-9]*$/);
          expect(elapsedMs, path).to.be.at.least(STATEMENT_TIMEOUT_MS - 20);
        }
      } finally {
        await locker.query('rollback');
      }
    });
    expect(svc().service.breaker.state).to.equal('closed');
    expect((await fetch(`${svc().url}/users/1`)).status).to.equal(200);
  });
});
