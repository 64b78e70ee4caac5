import { expect } from 'chai';
import { queryOnce } from '../../support/query-once.js';
import { postChunks } from '../../support/service-process.js';
import { useTestDatabase } from '../../support/test-database.js';
import { useTestService } from '../../support/service-fixture.js';

/** Object.prototype member names: objection's validator crashed on them (a 500 before). */
const PROTOTYPE_KEYS = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__'];

describe('Hostile input', () => {
  const db = useTestDatabase();
  const svc = useTestService(db);
  let seq = 0;
  const email = (tag: string): string => `${tag}-${Date.now()}-${seq++}@example.com`;

  async function stored(address: string): Promise<number> {
    const { rows } = await queryOnce<{ n: string }>(
      db().url,
      'select count(*) as n from users where email = $1',
      [address],
    );
    return Number(rows[0]!.n);
  }

  const postRaw = (path: string, body: string | Buffer, contentType: string): Promise<Response> =>
    fetch(`${svc().url}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body });

  describe('prototype-named keys', () => {
    for (const key of PROTOTYPE_KEYS) {
      it(`answers 400 naming body.${key} on POST /users, as for any unknown field`, async () => {
        const address = email('proto');
        const res = await postRaw(
          '/users',
          `{"email":"${address}","name":"A","${key}":"x"}`,
          'application/json',
        );
        expect(res.status).to.equal(400);
        const body = (await res.json()) as Record<string, unknown>;
        expect(body).to.include({ code: 'VALIDATION' });
        expect(body.fields).to.deep.equal([{ field: `body.${key}`, message: 'is not allowed' }]);
        expect(await stored(address)).to.equal(0);
      });

      it(`answers 400 naming the line and body.${key} for an import row, and imports nothing`, async () => {
        const first = email('proto-import');
        const text =
          `{"email":"${first}","name":"A"}\n` +
          `{"email":"${email('proto-import')}","name":"B","${key}":1}\n`;
        const res = await postRaw('/users/import', text, 'application/x-ndjson');
        expect(res.status).to.equal(400);
        const body = (await res.json()) as Record<string, unknown>;
        expect(body).to.include({ code: 'VALIDATION', line: 2 });
        expect(body.fields).to.deep.equal([
          { field: `body.${key}`, message: 'must NOT have additional properties' },
        ]);
        expect(await stored(first)).to.equal(0);
      });
    }

    it('answers 400 with the line for a prototype-named key in a JSON-array import', async () => {
      const res = await postRaw(
        '/users/import',
        `[\n{"email":"${email('arr')}","name":"A"},\n{"email":"${email('arr')}","name":"B","toString":"x"}\n]`,
        'application/json',
      );
      expect(res.status).to.equal(400);
      expect(await res.json()).to.include({ code: 'VALIDATION', line: 3 });
    });
  });

  describe('invalid UTF-8', () => {
    it('answers 400 INVALID_UTF8 naming the byte offset on POST /users, and stores nothing', async () => {
      const address = email('utf8');
      const prefix = Buffer.from(`{"email":"${address}","name":"A`);
      const body = Buffer.concat([prefix, Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
      const res = await postRaw('/users', body, 'application/json');
      expect(res.status).to.equal(400);
      const json = (await res.json()) as Record<string, unknown>;
      expect(json).to.include({ code: 'INVALID_UTF8' });
      expect(String(json.message)).to.include(`offset ${prefix.length}`);
      expect(await stored(address)).to.equal(0);
    });

    it('answers 400 naming the line of an NDJSON import row with invalid UTF-8, and imports nothing', async () => {
      const first = email('utf8-import');
      const body = Buffer.concat([
        Buffer.from(`{"email":"${first}","name":"A"}\n{"email":"${email('utf8-import')}","name":"B"}\n`),
        Buffer.from(`{"email":"${email('utf8-import')}","name":"C`),
        Buffer.from([0xff]),
        Buffer.from('"}\n'),
      ]);
      const res = await postRaw('/users/import', body, 'application/x-ndjson');
      expect(res.status).to.equal(400);
      expect(await res.json()).to.include({ code: 'IMPORT_ROW_INVALID', line: 3 });
      expect(await stored(first)).to.equal(0);
    });

    it('imports a multi-byte character split across two body chunks', async () => {
      const address = email('split');
      const row = Buffer.from(`{"email":"${address}","name":"Zoë Łukasz"}\n`);
      const cut = row.indexOf(Buffer.from('ë')) + 1; // inside the two bytes of ë
      // postChunks writes each piece as it is; Buffers keep the bytes exactly.
      const pieces = [row.subarray(0, cut), row.subarray(cut)] as unknown as string[];
      const { response } = postChunks(`${svc().url}/users/import`, 'application/x-ndjson', pieces, 50);
      const res = await response;
      expect(res.status, res.body).to.equal(201);
      const { rows } = await queryOnce<{ name: string }>(
        db().url,
        'select name from users where email = $1',
        [address],
      );
      expect(rows[0]?.name).to.equal('Zoë Łukasz');
    });
  });

  describe('GET /users?status=deleted', () => {
    it('answers 400 naming the allowed statuses: a deleted user is gone for the API', async () => {
      const res = await fetch(`${svc().url}/users?status=deleted`);
      expect(res.status).to.equal(400);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).to.include({ code: 'VALIDATION' });
      expect(body.fields).to.deep.equal([
        { field: 'query.status', message: 'must be one of active, suspended' },
      ]);
    });

    it('never lists a soft-deleted user', async () => {
      const created = await postRaw(
        '/users',
        JSON.stringify({ email: email('gone'), name: 'Gone' }),
        'application/json',
      );
      const { id } = (await created.json()) as { id: string };
      expect((await fetch(`${svc().url}/users/${id}`, { method: 'DELETE' })).status).to.equal(204);
      for (const query of ['', '?status=active', '?status=suspended']) {
        const ids: string[] = [];
        for (let cursor: string | null = null, first = true; first || cursor; first = false) {
          const sep = query ? '&' : '?';
          const url = `${svc().url}/users${query}${sep}limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
          const page = (await (await fetch(url)).json()) as {
            items: Array<{ id: string }>;
            nextCursor: string | null;
          };
          ids.push(...page.items.map((u) => u.id));
          cursor = page.nextCursor;
        }
        expect(ids, `GET /users${query}`).not.to.include(id);
      }
    });
  });
});
