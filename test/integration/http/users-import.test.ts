import { expect } from 'chai';
import { queryOnce } from '../../support/query-once.js';
import { useTestDatabase } from '../../support/test-database.js';
import { useTestService } from '../../support/service-fixture.js';

describe('POST /users/import', () => {
  const db = useTestDatabase();
  const svc = useTestService(db);
  let batch = 0;

  async function userCount(): Promise<number> {
    const { rows } = await queryOnce<{ n: string }>(db().url, 'select count(*) as n from users');
    return Number(rows[0]!.n);
  }

  function users(n: number): Array<{ email: string; name: string }> {
    const b = batch++;
    return Array.from({ length: n }, (_, i) => ({
      email: `import-${b}-${i}@example.com`,
      name: `User ${i}`,
    }));
  }

  const ndjson = (rows: unknown[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

  const post = (body: string, contentType = 'application/x-ndjson'): Promise<Response> =>
    fetch(`${svc().url}/users/import`, { method: 'POST', headers: { 'content-type': contentType }, body });

  it('imports NDJSON rows and answers 201 with the count', async () => {
    const before = await userCount();
    const res = await post(ndjson(users(1_000)));
    expect(res.status, await res.clone().text()).to.equal(201);
    expect(await res.json()).to.deep.equal({ imported: 1_000 });
    expect(await userCount()).to.equal(before + 1_000);
  });

  it('imports a JSON array body, normalising emails', async () => {
    const rows = users(3).map((u) => ({ ...u, email: `  ${u.email.toUpperCase()}` }));
    const res = await post(JSON.stringify(rows, null, 2), 'application/json');
    expect(res.status, await res.clone().text()).to.equal(201);
    const { rows: stored } = await queryOnce(db().url, 'select email from users where email = $1', [
      rows[0]!.email.trim().toLowerCase(),
    ]);
    expect(stored).to.have.length(1);
  });

  it('rejects the whole import with the line number of an invalid row', async () => {
    const before = await userCount();
    const rows: unknown[] = users(2_000);
    rows[1_499] = { email: 'not-an-email', name: 'Bad' };
    const res = await post(ndjson(rows));
    const body = (await res.json()) as Record<string, unknown>;
    expect(res.status).to.equal(400);
    expect(body).to.include({ code: 'VALIDATION', line: 1_500 });
    expect(body.fields).to.deep.equal([{ field: 'body.email', message: 'must match format "email"' }]);
    expect(await userCount()).to.equal(before);
  });

  it('rejects the whole import with the line number of malformed JSON', async () => {
    const before = await userCount();
    const text = ndjson(users(10)).replace(/\n/, '\n{"email": oops}\n');
    const res = await post(text);
    expect(res.status).to.equal(400);
    expect(await res.json()).to.include({ code: 'IMPORT_ROW_INVALID', line: 2 });
    expect(await userCount()).to.equal(before);
  });

  it('answers 409 with the line of a row whose email is already taken, and writes nothing', async () => {
    const before = await userCount();
    const rows = users(50);
    rows[30] = { ...rows[30]!, email: rows[4]!.email.toUpperCase() };
    const res = await post('\n' + ndjson(rows));
    expect(res.status).to.equal(409);
    expect(await res.json()).to.include({ code: 'DUPLICATE', line: 32 });
    expect(await userCount()).to.equal(before);
  });

  it('answers 415 for a body that is neither JSON nor NDJSON', async () => {
    const res = await post('email,name\na@b.c,A\n', 'text/csv');
    expect(res.status).to.equal(415);
  });
});
