/**
 * The knex CLI's configuration, built from `loadConfig()` (the one source of truth):
 *
 *   NODE_OPTIONS='--import tsx' npx knex migrate:latest | migrate:rollback [--all] |
 *     migrate:status | migrate:make NAME | migrate:unlock | seed:run
 *
 * (or `npm run db:migrate | db:rollback | db:status | db:make -- NAME | db:seed`).
 *
 * The profile is knex's `--env NAME` when given, else APP_ENV, else NODE_ENV, else
 * development; the same file serves development, test and production, each from its own
 * `config/<profile>.yaml` and environment. Migrations run with the migration credentials and
 * `lock_timeout` (see `knexMigrationConfig`). With no database host configured, the embedded
 * server is started if it is not running, and stopped again when the command ends if this
 * run started it.
 */
import type { Knex } from 'knex';
import { loadConfig } from './src/config/index.js';
import { knexMigrationConfig } from './src/db/migrations/migrations-config.js';
import { prepareMigrationTarget } from './src/db/migrations/migration-target.js';

/** Commands that only write files and need no database. */
const OFFLINE_COMMANDS = new Set(['migrate:make', 'seed:make', 'init']);

export default async function knexfile(): Promise<Knex.Config> {
  const argv = process.argv.slice(2);
  const cfg = loadConfig({ profile: cliEnv(argv) });
  if (argv.some((arg) => OFFLINE_COMMANDS.has(arg))) return knexMigrationConfig(cfg);
  const target = await prepareMigrationTarget(cfg, { stopOnExit: true });
  return knexMigrationConfig(target.config);
}

/** The value of knex's `--env NAME` / `--env=NAME` option, if given. */
function cliEnv(argv: readonly string[]): string | undefined {
  for (const [i, arg] of argv.entries()) {
    if (arg === '--env') return argv[i + 1];
    if (arg.startsWith('--env=')) return arg.slice('--env='.length);
  }
  return undefined;
}
