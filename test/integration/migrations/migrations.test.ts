import { inspect } from 'node:util';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { loadConfig } from '../../../src/config/index.js';
import type { AppConfig } from '../../../src/config/app-config.js';
import { assertSeedingAllowed, knexMigrationConfig } from '../../../src/db/migrations/migrations-config.js';
import { developmentUsers, DEV_USER_COUNT } from '../../../seeds/development/001_users.js';
import { adminQuery, serverEnv } from '../../support/test-database.js';

/** A loaded AppConfig pointing at database `name` of the test server, with extra variables. */
function configFor(name: string, extra: Record<string, string> = {}, profile = 'test'): AppConfig {
  return loadConfig({ profile, envFile: false, env: { ...serverEnv(name), ...extra } });
}

async function fingerprint(knex: Knex): Promise<unknown> {
  const { rows } = await knex.raw<{ rows: unknown[] }>(
    "select count(*) as n, md5(string_agg(concat_ws('|', id, email, name, status, version), ',' order by id)) as digest from users",
  );
  return rows[0];
}

describe('migrations and seeds', function () {
  this.timeout(60_000);
  const name = `pgdl_mig_${process.pid}`;
  let knex: Knex;

  before(async () => {
    await adminQuery(`drop database if exists ${name} with (force)`);
    await adminQuery(`create database ${name}`);
    knex = knexFactory(knexMigrationConfig(configFor(name)));
  });

  after(async () => {
    await knex?.destroy();
    await adminQuery(`drop database if exists ${name} with (force)`);
  });

  describe('the users migration', () => {
    it('goes up, down to an empty schema, and up again', async () => {
      const tables = async () =>
        (
          await knex.raw<{ rows: Array<{ t: string }> }>(
            "select tablename as t from pg_tables where schemaname = 'public' order by 1",
          )
        ).rows.map((r) => r.t);
      await knex.migrate.latest();
      expect(await tables()).to.deep.equal(['audit_log', 'knex_migrations', 'knex_migrations_lock', 'users']);
      await knex.migrate.rollback(undefined, true);
      expect(await tables()).to.deep.equal(['knex_migrations', 'knex_migrations_lock']);
      await knex.migrate.latest();
      expect(await tables()).to.include('users');
    });

    it('makes id a bigint identity the caller cannot set', async () => {
      const { rows } = await knex.raw<{ rows: Array<{ data_type: string; identity_generation: string }> }>(
        "select data_type, identity_generation from information_schema.columns where table_name = 'users' and column_name = 'id'",
      );
      expect(rows[0]).to.deep.equal({ data_type: 'bigint', identity_generation: 'ALWAYS' });
      const err: unknown = await knex
        .raw("insert into users (id, email, name) values (1, 'x@example.com', 'X')")
        .catch((e: unknown) => e);
      expect((err as { code?: string }).code).to.equal('428C9');
    });

    it('enforces status, lengths, soft-delete consistency and case-insensitive uniqueness in the database', async () => {
      const violation = async (sql: string) =>
        (await knex.raw(sql).then(
          () => undefined,
          (e: unknown) => e,
        )) as { code?: string; constraint?: string } | undefined;
      await knex.raw("insert into users (email, name) values ('db@example.com', 'DB')");
      expect(
        await violation("insert into users (email, name, status) values ('s@example.com', 'S', 'zzz')"),
      ).to.include({
        code: '23514',
        constraint: 'users_status_check',
      });
      expect(await violation("insert into users (email, name) values ('n@example.com', '')")).to.include({
        constraint: 'users_name_length_check',
      });
      expect(
        await violation(`insert into users (email, name) values ('${'e'.repeat(250)}@x.io', 'E')`),
      ).to.include({
        constraint: 'users_email_length_check',
      });
      expect(
        await violation("insert into users (email, name, status) values ('d@example.com', 'D', 'deleted')"),
      ).to.include({
        constraint: 'users_deleted_check',
      });
      expect(await violation("insert into users (email, name) values ('DB@EXAMPLE.COM', 'Dup')")).to.include({
        code: '23505',
        constraint: 'users_email_lower_key',
      });
    });
  });

  describe('migration connections', () => {
    it('run with the configured lock_timeout and an application name of their own', async () => {
      const { rows } = await knex.raw<{ rows: Array<{ lt: string; app: string }> }>(
        "select current_setting('lock_timeout') as lt, current_setting('application_name') as app",
      );
      expect(rows[0]).to.deep.equal({ lt: '5s', app: 'pg-data-layer-migrations' });
    });

    it('fail fast with 55P03 when DDL waits behind a lock held by the application', async () => {
      const fast = knexFactory(knexMigrationConfig(configFor(name, { DB_MIGRATIONS_LOCK_TIMEOUT: '300ms' })));
      const holder = await knex.transaction();
      try {
        await holder.raw('lock table users in access share mode');
        const started = Date.now();
        const err = (await fast
          .raw('alter table users add column nickname text')
          .catch((e: unknown) => e)) as {
          code?: string;
        };
        expect(err.code).to.equal('55P03');
        expect(Date.now() - started).to.be.below(5_000);
      } finally {
        await holder.rollback();
        await fast.destroy();
      }
    });

    it('use the migration role when database.migrations.username is set', async () => {
      await adminQuery('drop role if exists pgdl_migrator');
      await adminQuery("create role pgdl_migrator login password 'migrator-secret'");
      const asMigrator = knexFactory(
        knexMigrationConfig(
          configFor(name, { DB_MIGRATIONS_USER: 'pgdl_migrator', DB_MIGRATIONS_PASSWORD: 'migrator-secret' }),
        ),
      );
      try {
        const { rows } = await asMigrator.raw<{ rows: Array<{ u: string }> }>('select current_user as u');
        expect(rows[0]?.u).to.equal('pgdl_migrator');
      } finally {
        await asMigrator.destroy();
        await adminQuery('drop role if exists pgdl_migrator');
      }
    });

    it('never show the password when the config or client is printed', async () => {
      await adminQuery('drop role if exists pgdl_printer');
      await adminQuery("create role pgdl_printer login password 'do-not-print-me'");
      const config = knexMigrationConfig(
        configFor(name, { DB_MIGRATIONS_USER: 'pgdl_printer', DB_MIGRATIONS_PASSWORD: 'do-not-print-me' }),
      );
      const probe = knexFactory(config);
      try {
        // A real connection first: knex keeps the resolved connection settings on its client.
        await probe.raw('select 1');
        const printed = [
          inspect(config, { depth: 10 }),
          inspect(probe.client, { depth: 4 }),
          JSON.stringify(config),
        ];
        for (const text of printed) expect(text).not.to.contain('do-not-print-me');
      } finally {
        await probe.destroy();
        await adminQuery('drop role if exists pgdl_printer');
      }
    });
  });

  describe('seeds', () => {
    it('load the same 1,000 development users on every run', async () => {
      const asDevelopment = knexFactory(knexMigrationConfig(configFor(name, {}, 'development')));
      try {
        await asDevelopment.seed.run();
        const first = await fingerprint(asDevelopment);
        await asDevelopment.seed.run();
        expect(await fingerprint(asDevelopment)).to.deep.equal(first);
        expect(first).to.include({ n: String(DEV_USER_COUNT) });
        const suspended = await asDevelopment('users').where('status', 'suspended').count({ n: '*' });
        expect(suspended[0]).to.deep.equal({ n: String(DEV_USER_COUNT / 10) });
        expect([...developmentUsers(3)]).to.deep.equal([...developmentUsers(3)]);
      } finally {
        await asDevelopment.destroy();
      }
    });

    it('refuse every profile but development and test unless SEED_FORCE=1', () => {
      const fake = (profile: string) => ({ userParams: { profile } }) as unknown as Knex;
      expect(() => assertSeedingAllowed(fake('development'), {})).not.to.throw();
      expect(() => assertSeedingAllowed(fake('test'), {})).not.to.throw();
      expect(() => assertSeedingAllowed(fake('production'), {})).to.throw(
        /Refusing to seed the "production" profile/,
      );
      expect(() => assertSeedingAllowed(fake('staging'), {})).to.throw(/SEED_FORCE=1/);
      expect(() => assertSeedingAllowed(fake('production'), { SEED_FORCE: '1' })).not.to.throw();
      expect(() =>
        assertSeedingAllowed({ userParams: {} } as unknown as Knex, { APP_ENV: 'production' }),
      ).to.throw();
    });
  });
});
