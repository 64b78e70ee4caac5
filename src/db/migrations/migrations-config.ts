import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { Knex } from 'knex';
import type pg from 'pg';
import type { ClientConfig } from 'pg';
import type { AppConfig } from '../../config/app-config.js';
import { hidePassword } from '../../config/hide-password.js';
import { pgClientConfig } from '../connection/pg-connection-config.js';
import { guardedPgClientClass } from '../connection/guarded-pg-client.js';
import { isTlsRefused, sslOptions } from '../connection/ssl-options.js';
import { pgDialectWithClient } from '../knex-internals.js';

/*
 * Migration and seed settings shared by `knexfile.ts` (the stock knex CLI), the app's
 * migrate-on-start and the test harness, so all three run the same files against the same
 * table. Paths are absolute: they hold from `src/db/migrations/` under tsx and from `dist/db/migrations/` after a build.
 */

/** The directory of the TypeScript migrations (timestamp-prefixed, each with a working `down`). */
export const MIGRATIONS_DIRECTORY = fileURLToPath(new URL('../../../migrations', import.meta.url));

/** The root of the seed directories: `seeds/development` (1,000 users) and `seeds/test` (a few). */
const SEEDS_ROOT = fileURLToPath(new URL('../../../seeds', import.meta.url));

/** knex's bookkeeping table (its lock table is `knex_migrations_lock`). */
export const MIGRATIONS_TABLE = 'knex_migrations';

/** Profiles that may be seeded without `SEED_FORCE=1`. */
const SEEDABLE_PROFILES = ['development', 'test'] as const;

/** Extensions knex loads migrations and seeds from: `.ts` under tsx, `.js` after a build. */
export const MIGRATION_LOAD_EXTENSIONS: readonly string[] = ['.ts', '.js'];

/**
 * Extensions knex loads a service's migrations and seeds from (`defineKnexfile`): TypeScript
 * under tsx, and JavaScript in any module flavour.
 */
export const SERVICE_LOAD_EXTENSIONS: readonly string[] = ['.ts', '.mts', '.js', '.mjs', '.cjs'];

/** Where a knex config finds migrations and seeds (this repository's own by default). */
export interface MigrationFiles {
  migrations: Knex.MigratorConfig;
  /** Seeds of a profile; `undefined`: the config has none. */
  seeds?: ((profile: string) => Knex.SeederConfig) | undefined;
}

/** This repository's own migrations and profile seeds. */
const OWN_FILES: MigrationFiles = { migrations: migratorConfig(), seeds: seederConfig };

/** Settings for `knex.migrate.*` (this repository's migrations). */
export function migratorConfig(): Knex.MigratorConfig {
  return {
    directory: MIGRATIONS_DIRECTORY,
    tableName: MIGRATIONS_TABLE,
    extension: 'ts',
    loadExtensions: [...MIGRATION_LOAD_EXTENSIONS],
  };
}

/**
 * Settings for `knex.seed.*`: the `test` profile seeds from `seeds/test`, every other profile
 * from `seeds/development` (profiles outside SEEDABLE_PROFILES are refused by the seeds
 * themselves, see `assertSeedingAllowed`).
 */
function seederConfig(profile: string): Knex.SeederConfig {
  return {
    directory: `${SEEDS_ROOT}/${profile === 'test' ? 'test' : 'development'}`,
    extension: 'ts',
    loadExtensions: [...MIGRATION_LOAD_EXTENSIONS],
  };
}

/** A knex config carrying `userParams` (knex supports it at runtime; its types omit it). */
export type MigrationKnexConfig = Knex.Config & { userParams: { profile: string } };

/**
 * The knex config the migrate CLI, migrate-on-start and the test harness use:
 * - the migration credentials (`database.migrations.username/password`), else the
 *   application's, so the running app may be a role without DDL rights;
 * - `lock_timeout` = `database.migrations.lockTimeout` ms as a startup parameter, so a
 *   migration waiting behind a busy table fails fast (55P03) instead of queueing every later
 *   query on that table behind its lock request; no `statement_timeout` (building an index
 *   may take longer than any request should);
 * - TLS per `sslMode` exactly as the application connects (`sslOptions`), `prefer` included
 *   (asked for on every new connection), with the same authentication rules (channel binding,
 *   no cleartext or MD5 password over an unverified connection: `guardedPgClientClass`);
 * - a pool of at most 2, the migration and seed settings, and the profile in `userParams`
 *   for the seed guard.
 *
 * An empty host (the embedded default) means 127.0.0.1: start the server first
 * (`knexfile.ts` does). The password goes through a connection provider into a
 * non-enumerable property, so printing the knex config or client never shows it.
 */
export function knexMigrationConfig(cfg: AppConfig, files: MigrationFiles = OWN_FILES): MigrationKnexConfig {
  const pgCfg = cfg.database.postgres;
  const mig = cfg.database.migrations;
  const useMigrationRole = mig.username !== '';
  const base = pgClientConfig({
    ...pgCfg,
    host: pgCfg.host === '' ? '127.0.0.1' : pgCfg.host,
    username: useMigrationRole ? mig.username : pgCfg.username,
    applicationName: `${pgCfg.applicationName}-migrations`,
    lockTimeout: mig.lockTimeout,
    statementTimeout: 0,
  });
  const ca = pgCfg.sslRootCert ? readFileSync(pgCfg.sslRootCert, 'utf8') : undefined;
  const plan = sslOptions(pgCfg.sslMode, ca);
  const password = useMigrationRole ? mig.password : pgCfg.password;
  const Client = guardedPgClientClass(pgCfg, plan);
  const settings = { ...base, enableChannelBinding: pgCfg.channelBinding !== 'disable' };
  return {
    client: pgDialectWithClient(Client),
    connection: async () => {
      let ssl = plan.ssl;
      // sslMode=prefer: asked for on every new connection; plain only when this server refuses TLS now.
      if (plan.fallbackToPlain && ssl !== false && !(await acceptsTls(Client, settings, password, ssl)))
        ssl = false;
      return hidePassword({ ...settings, ssl }, password) as Knex.PgConnectionConfig;
    },
    pool: { min: 0, max: 2 },
    acquireConnectionTimeout: pgCfg.timeout,
    // Errors must not carry SQL with bind values inlined (knex's compileSqlOnError would inline them: secrets, personal data).
    compileSqlOnError: false,
    migrations: files.migrations,
    ...(files.seeds && { seeds: files.seeds(cfg.profile) }),
    userParams: { profile: cfg.profile },
  };
}

/** Whether the server completes a TLS handshake (sslMode=prefer's probe); other failures throw. */
async function acceptsTls(
  Client: typeof pg.Client,
  settings: ClientConfig,
  password: string,
  ssl: ConnectionOptions,
): Promise<boolean> {
  const probe = new Client(hidePassword({ ...settings, ssl }, password));
  probe.on('error', () => {});
  try {
    await probe.connect();
    return true;
  } catch (err) {
    if (isTlsRefused(err)) return false;
    throw err;
  } finally {
    await probe.end().catch(() => {});
  }
}

/**
 * Refuses to seed outside the development and test profiles unless `SEED_FORCE=1`.
 * Every seed file calls it first. The profile comes from the knex config's `userParams`
 * (set by `knexMigrationConfig`, so `knex seed:run --env production` is refused too); a
 * knex built without it falls back to APP_ENV, else NODE_ENV, else development.
 * @throws Error naming the profile and how to force it.
 */
export function assertSeedingAllowed(knex: Knex, env: NodeJS.ProcessEnv = process.env): void {
  const given = (knex.userParams as { profile?: unknown }).profile;
  const profile = typeof given === 'string' ? given : env.APP_ENV || env.NODE_ENV || 'development';
  const seedable = (SEEDABLE_PROFILES as readonly unknown[]).includes(profile);
  if (seedable || env.SEED_FORCE === '1') return;
  throw new Error(
    `Refusing to seed the "${profile}" profile: seeds replace data. Set SEED_FORCE=1 to do it anyway.`,
  );
}
