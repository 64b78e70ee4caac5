import { expect } from 'chai';
import { useTestDatabase } from '../../support/test-database.js';
import { useTestService } from '../../support/service-fixture.js';

interface UserBody {
  id: string;
  email: string;
  name: string;
  status: string;
  version: number;
  createdAt: string;
  updatedAt: string;
}

describe('Users API', () => {
  const db = useTestDatabase();
  const svc = useTestService(db);
  let seq = 0;
  const uniqueEmail = (tag: string): string => `${tag}-${Date.now()}-${seq++}@example.com`;

  const call = (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Response> =>
    fetch(`${svc().url}${path}`, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });

  async function createUser(email = uniqueEmail('u'), name = 'Ada'): Promise<UserBody> {
    const res = await call('POST', '/users', { email, name });
    expect(res.status, await res.clone().text()).to.equal(201);
    return (await res.json()) as UserBody;
  }

  describe('lifecycle', () => {
    it('creates, reads, lists, updates with If-Match, and soft-deletes a user', async () => {
      const email = uniqueEmail('Lifecycle');
      const created = await call('POST', '/users', {
        email: `  ${email.toUpperCase()} `,
        name: 'Ada Lovelace',
      });
      expect(created.status).to.equal(201);
      const user = (await created.json()) as UserBody;
      expect(user).to.include({
        email: email.toLowerCase(),
        name: 'Ada Lovelace',
        status: 'active',
        version: 1,
      });
      expect(user.id).to.match(/^[1-9][0-9]*$/);
      expect(created.headers.get('location')).to.equal(`/users/${user.id}`);
      expect(created.headers.get('etag')).to.equal('"1"');
      expect(Object.keys(user).sort()).to.deep.equal(
        ['createdAt', 'email', 'id', 'name', 'status', 'updatedAt', 'version'].sort(),
      );

      const read = await call('GET', `/users/${user.id}`);
      expect(read.status).to.equal(200);
      expect(read.headers.get('etag')).to.equal('"1"');
      expect(await read.json()).to.deep.equal(user);

      const patched = await call(
        'PATCH',
        `/users/${user.id}`,
        { name: 'Ada King', status: 'suspended' },
        { 'if-match': '"1"' },
      );
      expect(patched.status).to.equal(200);
      expect(patched.headers.get('etag')).to.equal('"2"');
      expect(await patched.json()).to.include({ name: 'Ada King', status: 'suspended', version: 2 });

      const listed = await call('GET', '/users?status=suspended&limit=100');
      expect(listed.status).to.equal(200);
      const page = (await listed.json()) as { items: UserBody[]; nextCursor: string | null };
      expect(page.items.map((u) => u.id)).to.include(user.id);

      const deleted = await call('DELETE', `/users/${user.id}`);
      expect(deleted.status).to.equal(204);
      expect((await call('GET', `/users/${user.id}`)).status).to.equal(404);
      expect(
        (await call('PATCH', `/users/${user.id}`, { name: 'x' }, { 'if-match': '"3"' })).status,
      ).to.equal(404);
      expect((await call('DELETE', `/users/${user.id}`)).status).to.equal(404);
    });

    it('pages through users with an opaque cursor', async () => {
      const ids = new Set<string>();
      for (let i = 0; i < 5; i++) ids.add((await createUser()).id);
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
        const res = await call('GET', `/users?limit=2${q}`);
        expect(res.status).to.equal(200);
        const page = (await res.json()) as { items: UserBody[]; nextCursor: string | null };
        expect(page.items.length).to.be.at.most(2);
        seen.push(...page.items.map((u) => u.id));
        cursor = page.nextCursor;
      } while (cursor);
      expect(seen).to.include.members([...ids]);
      expect(new Set(seen).size).to.equal(seen.length);
    });
  });

  describe('errors', () => {
    /** Every error body: JSON with a status, a code and a request id, never SQL or a stack. */
    async function expectError(
      res: Response,
      status: number,
      code: string,
    ): Promise<Record<string, unknown>> {
      const text = await res.text();
      expect(res.status, text).to.equal(status);
      expect(res.headers.get('content-type')).to.match(/^application\/json/);
      expect(text).not.to.match(/\b(select|insert|update users|constraint|users_email|at .*\.ts:\d+)/i);
      const body = JSON.parse(text) as Record<string, unknown>;
      expect(body).to.include({ statusCode: status, code });
      expect(body.requestId).to.equal(res.headers.get('x-request-id'));
      return body;
    }

    it('answers 400 for malformed JSON', async () => {
      await expectError(await call('POST', '/users', '{"email": "a@b.c", "name": '), 400, 'MALFORMED_JSON');
    });

    it('answers 400 naming every field of the wrong type', async () => {
      const body = await expectError(
        await call('POST', '/users', { email: 42, name: ['x'] }),
        400,
        'VALIDATION',
      );
      expect((body.fields as Array<{ field: string }>).map((f) => f.field).sort()).to.deep.equal([
        'body.email',
        'body.name',
      ]);
    });

    it('answers 400 naming unknown fields instead of dropping them', async () => {
      const body = await expectError(
        await call('POST', '/users', { email: uniqueEmail('x'), name: 'X', isAdmin: true }),
        400,
        'VALIDATION',
      );
      expect(body.fields).to.deep.equal([{ field: 'body.isAdmin', message: 'is not allowed' }]);
    });

    it('answers 400 naming a missing field and an invalid email format', async () => {
      const missing = await expectError(
        await call('POST', '/users', { email: uniqueEmail('m') }),
        400,
        'VALIDATION',
      );
      expect(missing.fields).to.deep.equal([{ field: 'body.name', message: 'is required' }]);
      const format = await expectError(
        await call('POST', '/users', { email: 'not-an-email', name: 'X' }),
        400,
        'VALIDATION',
      );
      expect((format.fields as Array<{ field: string }>).map((f) => f.field)).to.deep.equal(['body.email']);
    });

    it('answers 413 for a 2 MB body', async () => {
      const big = JSON.stringify({ email: uniqueEmail('big'), name: 'x'.repeat(2 * 1024 * 1024) });
      await expectError(await call('POST', '/users', big), 413, 'BODY_TOO_LARGE');
    });

    it('answers 415 for a content type other than JSON', async () => {
      const res = await fetch(`${svc().url}/users`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: 'email=a@b.c',
      });
      await expectError(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
    });

    it('answers 409 for an email that exists in another letter case', async () => {
      const email = uniqueEmail('dup');
      await createUser(email);
      const body = await expectError(
        await call('POST', '/users', { email: email.toUpperCase(), name: 'Twin' }),
        409,
        'DUPLICATE',
      );
      expect(body.fields).to.deep.equal([{ field: 'body.email', message: 'is already taken' }]);
    });

    it('answers 412 when If-Match carries a version that has moved, and writes nothing', async () => {
      const user = await createUser();
      expect(
        (await call('PATCH', `/users/${user.id}`, { name: 'First' }, { 'if-match': '"1"' })).status,
      ).to.equal(200);
      await expectError(
        await call('PATCH', `/users/${user.id}`, { name: 'Second' }, { 'if-match': '"1"' }),
        412,
        'VERSION_MISMATCH',
      );
      expect(await (await call('GET', `/users/${user.id}`)).json()).to.include({ name: 'First', version: 2 });
    });

    it('answers 428 when If-Match is missing and 400 when it is not a version', async () => {
      const user = await createUser();
      await expectError(
        await call('PATCH', `/users/${user.id}`, { name: 'No' }),
        428,
        'PRECONDITION_REQUIRED',
      );
      const bad = await expectError(
        await call('PATCH', `/users/${user.id}`, { name: 'No' }, { 'if-match': '*' }),
        400,
        'BAD_REQUEST',
      );
      expect(bad.fields).to.deep.equal([
        { field: 'headers.if-match', message: 'must be a version number such as "3"' },
      ]);
    });

    it('answers 404 for an unknown id', async () => {
      await expectError(await call('GET', '/users/999999999999'), 404, 'NOT_FOUND');
      await expectError(await call('DELETE', '/users/999999999999'), 404, 'NOT_FOUND');
    });

    it('answers 400 for a non-numeric or out-of-range id', async () => {
      for (const id of ['abc', '1%20OR%201=1', '-1', '0', '99999999999999999999']) {
        const body = await expectError(await call('GET', `/users/${id}`), 400, 'VALIDATION');
        expect((body.fields as Array<{ field: string }>)[0]?.field, id).to.equal('params.id');
      }
    });

    it('answers 400 for a bad list query: unknown status, limit out of range, tampered cursor, unknown parameter', async () => {
      for (const q of ['status=gone', 'limit=0', 'limit=101', 'limit=ten', 'sort=name']) {
        const body = await expectError(await call('GET', `/users?${q}`), 400, 'VALIDATION');
        expect((body.fields as Array<{ field: string }>)[0]?.field, q).to.match(/^query\./);
      }
      const body = await expectError(await call('GET', '/users?cursor=bm90LWEtY3Vyc29y'), 400, 'BAD_REQUEST');
      expect(body.fields).to.deep.equal([
        { field: 'query.cursor', message: (body.fields as Array<{ message: string }>)[0]?.message },
      ]);
    });

    it('answers 400 when a patch tries to set the deleted status or is empty', async () => {
      const user = await createUser();
      await expectError(
        await call('PATCH', `/users/${user.id}`, { status: 'deleted' }, { 'if-match': '"1"' }),
        400,
        'VALIDATION',
      );
      await expectError(
        await call('PATCH', `/users/${user.id}`, {}, { 'if-match': '"1"' }),
        400,
        'VALIDATION',
      );
    });
  });
});
