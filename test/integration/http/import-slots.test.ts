import { expect } from 'chai';
import { performance } from 'node:perf_hooks';
import { queryOnce } from '../../support/query-once.js';
import { slowRequest } from '../../support/slow-client.js';
import { useTestDatabase } from '../../support/test-database.js';
import { useTestService, waitFor } from '../../support/service-fixture.js';

/*
 * Who holds the import slots: bytes that make no rows (blank NDJSON lines, whitespace around
 * JSON array elements) buy no time against the minimum rate, each import has a row and a byte
 * cap, and one client may hold only its share of the slots. The deadline is long (20 s) so a
 * trickle cut by it (the old behaviour) fails these tests on time and message.
 */
const LIMITS = {
  timeout: 20_000,
  minBytesPerSecond: 1_000,
  minRateGracePeriod: 800,
  maxConcurrent: 2,
  maxRows: 5,
  maxBytes: 65_536,
};
const NDJSON = { 'content-type': 'application/x-ndjson' };

let tag = 0;
function rows(n: number, pad = 0): { prefix: string; body: string } {
  const prefix = `slots-${Date.now()}-${tag++}`;
  const body = Array.from(
    { length: n },
    (_, i) => JSON.stringify({ email: `${prefix}-${i}@example.com`, name: 'N' }) + ' '.repeat(pad) + '\n',
  ).join('');
  return { prefix, body };
}

describe('Import slots', () => {
  const db = useTestDatabase();

  async function stored(prefix: string): Promise<number> {
    const { rows: r } = await queryOnce<{ n: string }>(
      db().url,
      'select count(*) as n from users where email like $1',
      [`${prefix}-%`],
    );
    return Number(r[0]!.n);
  }

  describe('two slots, two per client', () => {
    // Every test client shares one address, so two slots per client lets two trickles hold both.
    const svc = useTestService(db, {
      server: { bodyTimeout: 2_000, import: { ...LIMITS, maxPerClient: 2 } },
    });

    /** A client sending `unit` 200 times per 100 ms: 2 000 B/s per byte of `unit`, all of it blank. */
    const trickle = (first: string, unit: string, contentType: string) =>
      slowRequest(svc().url, {
        path: '/users/import',
        headers: { 'content-type': contentType },
        chunked: true,
        chunks: (function* () {
          yield first;
          for (;;) yield unit.repeat(200);
        })(),
        pauseMs: 100,
        giveUpMs: 30_000,
      });

    it('cuts two clients trickling blank lines and array whitespace at the minimum rate, not the deadline, and then imports', async () => {
      const started = performance.now();
      const newlines = trickle('\n', '\n', 'application/x-ndjson');
      const spaces = trickle('[', ' \n', 'application/json');
      for (const res of await Promise.all([newlines, spaces])) {
        expect(res.status, res.body).to.equal(408);
        expect(String(res.json().message)).to.match(/slower than 1000 bytes per second/);
        expect(res.closedByServer).to.equal(true);
      }
      // Cut by the rate after the 0.8 s grace: far inside the 20 s deadline.
      expect(performance.now() - started).to.be.below(LIMITS.timeout / 2);
      const { prefix, body } = rows(3);
      const real = await fetch(`${svc().url}/users/import`, { method: 'POST', headers: NDJSON, body });
      expect(real.status, await real.clone().text()).to.equal(201);
      expect(await stored(prefix)).to.equal(3);
    });

    it('refuses an import of more than maxRows rows with 413 naming the cap, and stores none of it', async () => {
      const { prefix, body } = rows(LIMITS.maxRows + 1);
      const res = await fetch(`${svc().url}/users/import`, { method: 'POST', headers: NDJSON, body });
      expect(res.status).to.equal(413);
      const json = (await res.json()) as Record<string, unknown>;
      expect(json).to.include({ code: 'IMPORT_TOO_LARGE' });
      expect(String(json.message)).to.include('server.import.maxRows');
      expect(await stored(prefix)).to.equal(0);
    });

    it('refuses an import of more than maxBytes bytes with 413 naming the cap, and stores none of it', async () => {
      const { prefix, body } = rows(4, 17_000);
      expect(Buffer.byteLength(body)).to.be.above(LIMITS.maxBytes);
      const res = await fetch(`${svc().url}/users/import`, { method: 'POST', headers: NDJSON, body });
      expect(res.status).to.equal(413);
      const json = (await res.json()) as Record<string, unknown>;
      expect(json).to.include({ code: 'IMPORT_TOO_LARGE' });
      expect(String(json.message)).to.include('server.import.maxBytes');
      expect(await stored(prefix)).to.equal(0);
    });

    it('imports exactly maxRows rows', async () => {
      const { prefix, body } = rows(LIMITS.maxRows);
      const res = await fetch(`${svc().url}/users/import`, { method: 'POST', headers: NDJSON, body });
      expect(res.status, await res.clone().text()).to.equal(201);
      expect(await stored(prefix)).to.equal(LIMITS.maxRows);
    });
  });

  describe('two slots, one per client', () => {
    const svc = useTestService(db, {
      server: { bodyTimeout: 2_000, import: { ...LIMITS, maxPerClient: 1 } },
    });

    it('refuses a second concurrent import from the same client with 429 and Retry-After, and takes one once the first ends', async () => {
      // Four rows of about 450 bytes, one per 200 ms: above the minimum rate, about 0.8 s long.
      const { prefix, body } = rows(4, 400);
      const first = slowRequest(svc().url, {
        path: '/users/import',
        headers: { ...NDJSON, connection: 'close' },
        chunked: true,
        chunks: body.split(/(?<=\n)/),
        pauseMs: 200,
      });
      await waitFor(
        () => Promise.resolve(svc().service.db.getConnectionStats().inUse >= 1),
        3_000,
        'the first import running',
      );
      const second = await fetch(`${svc().url}/users/import`, {
        method: 'POST',
        headers: NDJSON,
        body: rows(1).body,
      });
      expect(second.status).to.equal(429);
      expect(second.headers.get('retry-after')).to.equal('5');
      const json = (await second.json()) as Record<string, unknown>;
      expect(json).to.include({ code: 'IMPORT_CLIENT_CAPACITY' });
      expect(String(json.message)).to.include('server.import.maxPerClient');
      expect((await first).status).to.equal(201);
      expect(await stored(prefix)).to.equal(4);
      const again = rows(1);
      const third = await fetch(`${svc().url}/users/import`, {
        method: 'POST',
        headers: NDJSON,
        body: again.body,
      });
      expect(third.status).to.equal(201);
    });
  });
});
