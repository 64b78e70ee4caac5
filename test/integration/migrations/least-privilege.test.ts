import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import knexFactory from 'knex';
import type { AppConfig } from '../../../src/config/app-config.js';
import { AuditRepository } from '../../../src/audit/audit-repository.js';
import { loadConfig } from '../../../src/config/index.js';
import { knexMigrationConfig } from '../../../src/db/migrations/migrations-config.js';
import { HealthRepository } from '../../../src/health/health-repository.js';
import { UserRepository } from '../../../src/users/user-repository.js';
import { WARN } from '../../support/capture-logger.js';
import { leastPrivilegeScript } from '../../support/least-privilege.js';
import { useDatabases } from '../../support/postgres-database-helpers.js';
import { queryOnce } from '../../support/query-once.js';
import { adminQuery, serverEnv } from '../../support/test-database.js';
import { testServer } from '../../support/root-hooks.js';

/** The SQLSTATE a rejected statement failed with. */
async function sqlStateOf(run: () => PromiseLike<unknown>): Promise<string | undefined> {
  try {
    await run();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

// The roles of docs/migrations.md, created by the very script the page shows, on a database
// of their own (roles are cluster-wide: the names carry a random suffix).
describe('least privilege: examples/least-privilege.sql on a fresh database (PostgreSQL 15+)', () => {
  const suffix = randomBytes(4).toString('hex');
  const database = `pgdl_lp_${suffix}`;
  const owner = `pgdl_owner_${suffix}`;
  const app = `pgdl_app_${suffix}`;
  const schema = 'app';
  const passwords = { owner: randomBytes(9).toString('hex'), app: randomBytes(9).toString('hex') };
  const open = useDatabases();
  let cfg: AppConfig;
  let superuserUrl: string;

  before(async () => {
    await adminQuery(`create database ${database}`);
    const url = new URL(testServer().adminUrl);
    url.pathname = `/${database}`;
    superuserUrl = url.toString();
    const script = leastPrivilegeScript({
      DBNAME: database,
      owner_role: owner,
      owner_password: passwords.owner,
      app_role: app,
      app_password: passwords.app,
      schema,
    });
    await queryOnce(superuserUrl, script);
    cfg = loadConfig({
      env: {
        ...serverEnv(database),
        DB_USER: app,
        DB_PASSWORD: passwords.app,
        DB_MIGRATIONS_USER: owner,
        DB_MIGRATIONS_PASSWORD: passwords.owner,
      },
      envFile: false,
      profile: 'test',
    });
    // The migrations, as the owner (database.migrations credentials), exactly as `npm run db:migrate` runs them.
    const migrator = knexFactory(knexMigrationConfig(cfg));
    try {
      await migrator.migrate.latest();
    } finally {
      await migrator.destroy();
    }
  });

  after(async () => {
    await adminQuery(`drop database if exists ${database} with (force)`);
    await adminQuery(`drop role if exists ${owner}, ${app}`);
  });

  const appDatabase = () => open(cfg.database.postgres);

  it('creates the tables in the schema the migration role owns, not in public', async () => {
    const { rows } = await queryOnce<{ tablename: string; schemaname: string; tableowner: string }>(
      superuserUrl,
      `select tablename, schemaname, tableowner from pg_tables
        where tablename in ('users', 'knex_migrations') order by tablename`,
    );
    expect(rows).to.deep.equal([
      { tablename: 'knex_migrations', schemaname: schema, tableowner: owner },
      { tablename: 'users', schemaname: schema, tableowner: owner },
    ]);
  });

  it('refuses DDL from the application role with 42501 (insufficient privilege)', async () => {
    const { db } = appDatabase();
    await db.connect();
    const knex = db.driver();
    const refused: Record<string, string | undefined> = {};
    for (const sql of [
      'create table notes (id int)',
      'create table public.notes (id int)',
      'create temporary table scratch (id int)',
      'create schema extra',
      'create index users_name_idx on users (name)',
      'alter table users add column phone text',
      'drop table users',
      'truncate users',
    ])
      refused[sql] = await sqlStateOf(() => knex.raw(sql));
    expect(refused).to.deep.equal({
      'create table notes (id int)': '42501',
      'create table public.notes (id int)': '42501',
      'create temporary table scratch (id int)': '42501',
      'create schema extra': '42501',
      'create index users_name_idx on users (name)': '42501',
      'alter table users add column phone text': '42501',
      'drop table users': '42501',
      'truncate users': '42501',
    });
  });

  it('runs the repository as the application role: create, getById, update, copyIn', async () => {
    const { db } = appDatabase();
    await db.connect();
    const users = new UserRepository(db.driver());
    const created = await users.create({ email: `ada.${suffix}@example.test`, name: 'Ada' });
    expect((await users.getById(created.id)).name).to.equal('Ada');
    const updated = await users.update(created.id, { name: 'Ada Lovelace' }, created.version);
    expect(updated).to.include({ name: 'Ada Lovelace', version: 2 });
    const copied = await db.withTransaction(() =>
      users.copyIn([
        { email: `grace.${suffix}@example.test`, name: 'Grace' },
        { email: `edsger.${suffix}@example.test`, name: 'Edsger' },
      ]),
    );
    expect(copied).to.equal(2);
    expect(await users.count()).to.equal(3);
  });

  it('lets the application role insert and read audit records, never update, delete or truncate them', async () => {
    const { db } = appDatabase();
    await db.connect();
    const audit = new AuditRepository(db.driver());
    await db.withTransaction(() =>
      audit.record({ action: 'delete', entity: 'user', entityId: '1', actor: 'ops' }),
    );
    expect((await audit.list('user', '1')).map((r) => r.actor)).to.deep.equal(['ops']);
    const { rows } = await queryOnce<Record<string, boolean>>(
      superuserUrl,
      `select has_table_privilege($1, 'app.audit_log', 'INSERT') as insert,
              has_table_privilege($1, 'app.audit_log', 'SELECT') as select,
              has_table_privilege($1, 'app.audit_log', 'UPDATE') as update,
              has_table_privilege($1, 'app.audit_log', 'DELETE') as delete,
              has_table_privilege($1, 'app.audit_log', 'TRUNCATE') as truncate`,
      [app],
    );
    expect(rows[0]).to.deep.equal({
      insert: true,
      select: true,
      update: false,
      delete: false,
      truncate: false,
    });
    const knex = db.driver();
    for (const sql of [
      "update audit_log set actor = 'forged'",
      'delete from audit_log',
      'truncate audit_log',
    ])
      expect(await sqlStateOf(() => knex.raw(sql)), sql).to.equal('42501');
  });

  it('answers health() and the migration status as the application role', async () => {
    const { db } = appDatabase();
    await db.connect();
    const report = await db.health();
    expect(report.status).to.equal('up');
    const status = await new HealthRepository(db).migrationStatus();
    expect(status).to.deep.include({ pending: [], upToDate: true });
  });

  it('warns once at connect when the connected role is a superuser, and not for the application role', async () => {
    const asApp = open(cfg.database.postgres, { warnIfSuperuser: true });
    await asApp.db.connect();
    const superCfg = loadConfig({ env: serverEnv(database), envFile: false, profile: 'test' });
    const asSuper = open(superCfg.database.postgres, { warnIfSuperuser: true });
    await asSuper.db.connect();
    await asSuper.db.connect(); // once per database, not per connect
    const quiet = open(superCfg.database.postgres);
    await quiet.db.connect();

    const superuserLines = (lines: typeof asApp.log.lines) =>
      lines.filter((l) => l.level === WARN && /superuser/.test(l.msg));
    expect(superuserLines(asApp.log.lines)).to.deep.equal([]);
    expect(superuserLines(quiet.log.lines)).to.deep.equal([]);
    const warned = superuserLines(asSuper.log.lines);
    expect(warned).to.have.length(1);
    expect(warned[0]).to.include({ role: superCfg.database.postgres.username });
  });
});
