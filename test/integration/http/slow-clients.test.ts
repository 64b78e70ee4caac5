import { expect } from 'chai';
import type { Knex } from 'knex';
import { queryOnce } from '../../support/query-once.js';
import { useTestDatabase } from '../../support/test-database.js';
import { useTestService, waitFor } from '../../support/service-fixture.js';
import { slowRequest } from '../../support/slow-client.js';

/*
 * Slow and stalled clients against the real service, with short limits so each case takes a
 * second or two: a body cut by the request timeout or the gap between chunks, headers that never
 * end, imports cut by their minimum rate or deadline (connection released, nothing written), the
 * cap on concurrent imports, an import outliving the ordinary request timeout, and readiness
 * while the pool is saturated.
 */
describe('Slow clients', () => {
  const db = useTestDatabase();
  const svc = useTestService(db, {
    server: {
      requestTimeout: 1_500,
      headersTimeout: 1_000,
      bodyTimeout: 600,
      keepAliveTimeout: 300,
      readiness: { poolSaturatedFor: 300 },
      // Every test client shares one address: two slots per client, so two can run at once.
      import: {
        timeout: 3_000,
        minBytesPerSecond: 1_000,
        minRateGracePeriod: 800,
        maxConcurrent: 2,
        maxPerClient: 2,
      },
    },
    database: { postgres: { maxOpenConns: 3, maxIdleConns: 3, timeout: 3_000 } },
  });
  let tag = 0;

  /** NDJSON rows of `bytes` bytes each (padded with blanks after the JSON), emails tagged so they can be counted. */
  function rows(n: number, bytes = 60): { prefix: string; lines: string[] } {
    const prefix = `slow-${Date.now()}-${tag++}`;
    const lines = Array.from({ length: n }, (_, i) => {
      const json = JSON.stringify({ email: `${prefix}-${i}@example.com`, name: 'N' });
      return json + ' '.repeat(Math.max(0, bytes - json.length - 1)) + '\n';
    });
    return { prefix, lines };
  }

  async function stored(prefix: string): Promise<number> {
    const { rows: r } = await queryOnce<{ n: string }>(
      db().url,
      'select count(*) as n from users where email like $1',
      [`${prefix}-%`],
    );
    return Number(r[0]!.n);
  }

  const importHeaders = { 'content-type': 'application/x-ndjson' };

  describe('ordinary requests', () => {
    it('cuts a body sent one byte at a time with 408 once the request timeout passes, and closes the connection', async () => {
      // 300 ms between bytes stays under bodyTimeout (600 ms): only requestTimeout can end it.
      const res = await slowRequest(svc().url, {
        path: '/users',
        headers: { 'content-type': 'application/json', 'content-length': '200' },
        chunks: ['{', ...Array.from({ length: 40 }, () => ' ')],
        pauseMs: 300,
      });
      expect(res.closedByServer, 'closed by the server').to.equal(true);
      expect(res.status).to.equal(408);
      expect(res.json()).to.include({ code: 'REQUEST_TIMEOUT' });
      expect(String(res.json().message)).to.match(/not received within 1500 ms/);
      expect(res.sent, 'bytes sent before the cut').to.be.below(40);
    });

    it('cuts a body that stalls longer than the body timeout with 408', async () => {
      const res = await slowRequest(svc().url, {
        path: '/users',
        headers: { 'content-type': 'application/json', 'content-length': '50' },
        chunks: ['{"email":'],
        pauseMs: 0,
        end: false,
      });
      expect(res.closedByServer).to.equal(true);
      expect(res.status).to.equal(408);
      expect(String(res.json().message)).to.match(/stalled: no data for 600 ms/);
    });

    it('closes a connection whose headers never finish (Node headersTimeout) with 408', async () => {
      const res = await slowRequest(svc().url, {
        method: 'GET',
        path: '/users',
        chunks: [],
        pauseMs: 0,
        partialHead: true,
      });
      expect(res.closedByServer).to.equal(true);
      expect(res.status).to.equal(408);
    });

    it('closes a kept-alive connection once it has been idle for the keep-alive timeout', async () => {
      const res = await slowRequest(svc().url, {
        method: 'GET',
        path: '/healthz',
        chunks: [],
        pauseMs: 0,
        giveUpMs: 5_000,
      });
      expect(res.status).to.equal(200);
      // Kept alive by the response; closed later, when idle.
      expect(res.headers.connection).to.equal('keep-alive');
      expect(res.closedByServer, 'idle connection closed by the server').to.equal(true);
    });

    it('still answers a normal request afterwards', async () => {
      const res = await fetch(`${svc().url}/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: `after-${Date.now()}@example.com`, name: 'A' }),
      });
      expect(res.status).to.equal(201);
    });
  });

  describe('POST /users/import', () => {
    it('refuses an upload slower than the minimum rate with 408, rolls it back and frees its connection', async () => {
      // One 60-byte row every 250 ms: 240 B/s, under the 1000 B/s minimum.
      const { prefix, lines } = rows(40);
      const res = await slowRequest(svc().url, {
        path: '/users/import',
        headers: importHeaders,
        chunked: true,
        chunks: lines,
        pauseMs: 250,
      });
      expect(res.status).to.equal(408);
      expect(res.json()).to.include({ code: 'REQUEST_TIMEOUT' });
      expect(String(res.json().message)).to.match(/slower than 1000 bytes per second/);
      expect(res.closedByServer).to.equal(true);
      expect(await stored(prefix)).to.equal(0);
      expect(svc().service.db.getConnectionStats().inUse, 'pool connections still held').to.equal(0);
    });

    it('refuses an upload that outlives the import deadline, however steady, with 408', async () => {
      // 1600 B/s (above the minimum rate), but 40 rows take 4 s: past the 3 s deadline.
      const { prefix, lines } = rows(40, 160);
      const res = await slowRequest(svc().url, {
        path: '/users/import',
        headers: importHeaders,
        chunked: true,
        chunks: lines,
        pauseMs: 100,
      });
      expect(res.status).to.equal(408);
      expect(String(res.json().message)).to.match(/not uploaded within 3000 ms/);
      expect(await stored(prefix)).to.equal(0);
      expect(svc().service.db.getConnectionStats().inUse).to.equal(0);
    });

    it('imports an upload that takes longer than the ordinary request timeout but keeps within its own limits', async () => {
      // 20 rows of 400 bytes every 100 ms: 4000 B/s for about 2 s, past requestTimeout (1.5 s).
      const { prefix, lines } = rows(20, 400);
      const res = await slowRequest(svc().url, {
        path: '/users/import',
        headers: { ...importHeaders, connection: 'close' },
        chunked: true,
        chunks: lines,
        pauseMs: 100,
      });
      expect(res.status, res.body).to.equal(201);
      expect(await stored(prefix)).to.equal(20);
    });

    it('refuses an import beyond maxConcurrent with 503, IMPORT_CAPACITY and Retry-After, and takes it once one ends', async () => {
      // Two steady imports hold both slots (and one pool connection each) for about 1.5 s.
      const running = [0, 1].map(() => {
        const { prefix, lines } = rows(15, 400);
        return {
          prefix,
          done: slowRequest(svc().url, {
            path: '/users/import',
            headers: { ...importHeaders, connection: 'close' },
            chunked: true,
            chunks: lines,
            pauseMs: 100,
          }),
        };
      });
      await waitFor(
        () => Promise.resolve(svc().service.db.getConnectionStats().inUse >= 2),
        5_000,
        'two imports running',
      );
      const third = await fetch(`${svc().url}/users/import`, {
        method: 'POST',
        headers: importHeaders,
        body: rows(1).lines.join(''),
      });
      expect(third.status).to.equal(503);
      expect(third.headers.get('retry-after')).to.equal('5');
      expect(await third.json()).to.include({ code: 'IMPORT_CAPACITY' });
      // Meanwhile the rest of the API is served: imports never take the whole pool.
      expect((await fetch(`${svc().url}/users?limit=1`)).status).to.equal(200);
      for (const r of running) {
        expect((await r.done).status).to.equal(201);
        expect(await stored(r.prefix)).to.equal(15);
      }
      const { prefix, lines } = rows(3);
      const again = await fetch(`${svc().url}/users/import`, {
        method: 'POST',
        headers: importHeaders,
        body: lines.join(''),
      });
      expect(again.status).to.equal(201);
      expect(await stored(prefix)).to.equal(3);
    });

    it('takes no pool connection while the first row has not arrived', async () => {
      const pending = slowRequest(svc().url, {
        path: '/users/import',
        headers: importHeaders,
        chunked: true,
        chunks: [],
        pauseMs: 0,
        end: false,
      });
      // The stalled upload is cut by the gap bound; until then it held no connection.
      await new Promise((r) => setTimeout(r, 300));
      expect(svc().service.db.getConnectionStats().inUse).to.equal(0);
      const res = await pending;
      expect(res.status).to.equal(408);
      expect(String(res.json().message)).to.match(/stalled/);
    });
  });

  describe('GET /readyz', () => {
    it('answers 503 "pool saturated" while every connection is in use with acquires waiting, and 200 once the pool recovers', async () => {
      const knex = svc().service.db.driver();
      const held: Knex.Transaction[] = [];
      for (let i = 0; i < 3; i++) held.push(await knex.transaction());
      // Someone waiting for a connection (up to the 3 s acquire timeout).
      const waiter = knex.raw('select 1').then(
        () => 'served',
        () => 'timed out',
      );
      try {
        await waitFor(
          async () => {
            const res = await fetch(`${svc().url}/readyz`);
            const body = (await res.json()) as { reason?: string };
            return res.status === 503 && body.reason === 'pool saturated';
          },
          2_500,
          '/readyz to report the saturated pool',
        );
      } finally {
        for (const trx of held) await trx.rollback();
      }
      expect(await waiter).to.equal('served');
      await waitFor(
        async () => (await fetch(`${svc().url}/readyz`)).status === 200,
        2_000,
        '/readyz to recover',
      );
    });
  });
});
