import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestServer, type TestServer } from '../../../src/testing/index.js';
import { queryOnce } from '../../support/query-once.js';
import { testServer } from '../../support/root-hooks.js';
import { adminQuery } from '../../support/test-database.js';

/** A service's own files: a TypeScript migration, a JavaScript one and a seed. */
function writeServiceFiles(root: string): { migrations: string; seeds: string } {
  const migrations = path.join(root, 'migrations');
  const seeds = path.join(root, 'seeds');
  mkdirSync(migrations);
  mkdirSync(seeds);
  writeFileSync(
    path.join(migrations, '20260101000000_orders.ts'),
    `import type { Knex } from 'knex';
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('orders', (t) => { t.bigIncrements('id'); t.text('item').notNullable(); });
}
export async function down(knex: Knex): Promise<void> { await knex.schema.dropTable('orders'); }
`,
  );
  writeFileSync(
    path.join(migrations, '20260102000000_order_notes.mjs'),
    `export async function up(knex) { await knex.schema.alterTable('orders', (t) => t.text('note')); }
export async function down(knex) { await knex.schema.alterTable('orders', (t) => t.dropColumn('note')); }
`,
  );
  writeFileSync(
    path.join(seeds, '001_orders.mjs'),
    `export async function seed(knex) {
  if (knex.userParams.profile !== 'test') throw new Error('seeded outside the test profile');
  await knex('orders').insert([{ item: 'book', note: 'seeded' }, { item: 'pen' }]);
}
`,
  );
  return { migrations, seeds };
}

describe('startTestServer()', () => {
  let root: string;
  let server: TestServer | undefined;
  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'pgdl-service-'));
  });
  afterEach(async () => {
    await server?.stop();
    server = undefined;
    rmSync(root, { recursive: true, force: true });
  });

  it('migrates and seeds a template once from the service files; each database is a fresh clone', async () => {
    const files = writeServiceFiles(root);
    const lines: string[] = [];
    server = await startTestServer({ ...files, url: testServer().adminUrl, log: (line) => lines.push(line) });
    expect(server.source).to.equal('url');
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(
      new RegExp(`^test PostgreSQL: url \\(template ${server.templateName} ready in \\d+ ms\\)$`),
    );

    const first = await server.createDatabase();
    const second = await server.createDatabase();
    await queryOnce(first.url, `insert into orders (item) values ('only in first')`);
    const rows = async (url: string) =>
      (
        await queryOnce<{ item: string; note: string | null }>(
          url,
          'select item, note from orders order by id',
        )
      ).rows;
    expect(await rows(first.url)).to.deep.equal([
      { item: 'book', note: 'seeded' },
      { item: 'pen', note: null },
      { item: 'only in first', note: null },
    ]);
    expect(await rows(second.url)).to.have.length(2);
    const cfg = second.config({ maxOpenConns: 3 });
    expect(cfg).to.include({ name: second.name, maxOpenConns: 3, sslMode: 'disable' });

    await first.drop();
    await second.drop();
    const exists = (name: string) => adminQuery('select 1 from pg_database where datname = $1', [name]);
    expect((await exists(first.name)).rowCount).to.equal(0);
    const template = server.templateName;
    await server.stop();
    server = undefined;
    expect((await exists(template)).rowCount).to.equal(0);
  });

  it('fails with the migration error and leaves no template behind when a migration fails', async () => {
    const files = writeServiceFiles(root);
    writeFileSync(
      path.join(files.migrations, '20260103000000_broken.mjs'),
      `export async function up(knex) { await knex.raw('create table orders (id int)'); }
export async function down() {}
`,
    );
    const before = (
      await adminQuery(`select count(*)::int as n from pg_database where datname like 'pgdl_template_%'`)
    ).rows[0] as { n: number };
    const err = await startTestServer({ ...files, url: testServer().adminUrl, log: false }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(Error);
    expect((err as Error).message).to.match(/already exists/);
    const after = (
      await adminQuery(`select count(*)::int as n from pg_database where datname like 'pgdl_template_%'`)
    ).rows[0] as { n: number };
    expect(after.n).to.equal(before.n);
  });
});
