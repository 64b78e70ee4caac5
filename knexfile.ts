/**
 * The knex CLI's configuration for this repository's own migrations and seeds, built with the
 * layer's `defineKnexfile` (what a service's knexfile uses too):
 *
 *   NODE_OPTIONS='--import tsx' npx knex migrate:latest | migrate:rollback [--all] |
 *     migrate:status | migrate:make NAME | migrate:unlock | seed:run
 *
 * (or `npm run db:migrate | db:rollback | db:status | db:make -- NAME | db:seed`).
 *
 * The profile is knex's `--env NAME` when given, else APP_ENV, else NODE_ENV, else
 * development; `seeds/test` seeds the test profile, `seeds/development` every other one (the
 * seeds refuse profiles other than development and test unless SEED_FORCE=1).
 */
import { defineKnexfile } from './src/index.js';

export default defineKnexfile({
  migrations: { directory: new URL('./migrations', import.meta.url) },
  seeds: {
    directory: (profile) =>
      new URL(`./seeds/${profile === 'test' ? 'test' : 'development'}`, import.meta.url),
  },
});
