import { expect } from 'chai';
import { useTestDatabase } from '../../support/test-database.js';
import { useTestService } from '../../support/service-fixture.js';

const SECRET = 'cursor-secret-for-this-test-0123456789';

interface Page {
  items: Array<{ id: string }>;
  nextCursor: string | null;
}

describe('Signed list cursors (server.cursorSecret)', () => {
  const db = useTestDatabase();
  const svc = useTestService(db, { server: { cursorSecret: SECRET } });

  async function firstCursor(): Promise<string> {
    for (let i = 0; i < 3; i++) {
      await fetch(`${svc().url}/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: `cursor-${Date.now()}-${i}@example.com`, name: 'C' }),
      });
    }
    const page = (await (await fetch(`${svc().url}/users?limit=1`)).json()) as Page;
    expect(page.nextCursor).to.be.a('string');
    return page.nextCursor!;
  }

  const list = (cursor: string) => fetch(`${svc().url}/users?limit=1&cursor=${encodeURIComponent(cursor)}`);

  async function expectRefused(res: Response): Promise<void> {
    expect(res.status).to.equal(400);
    const body = (await res.json()) as { code: string; fields: Array<{ field: string }> };
    expect(body.code).to.equal('BAD_REQUEST');
    expect(body.fields.map((f) => f.field)).to.deep.equal(['query.cursor']);
  }

  it('issues signed cursors that page on', async () => {
    const cursor = await firstCursor();
    expect(cursor).to.match(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect((await list(cursor)).status).to.equal(200);
  });

  it('refuses a cursor whose position was edited (signature kept) with a typed 400', async () => {
    const cursor = await firstCursor();
    const [body, signature] = cursor.split('.');
    const state = JSON.parse(Buffer.from(body!, 'base64url').toString('utf8')) as { id: string };
    const forged = Buffer.from(JSON.stringify({ ...state, id: String(Number(state.id) + 1) })).toString(
      'base64url',
    );
    await expectRefused(await list(`${forged}.${signature}`));
  });

  it('refuses a cursor without its signature, or signed with another key, with a typed 400', async () => {
    const cursor = await firstCursor();
    const [body] = cursor.split('.');
    await expectRefused(await list(body!));
    await expectRefused(await list(`${body}.${'A'.repeat(43)}`));
  });
});
