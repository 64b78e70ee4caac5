import knexFactory from 'knex';
import { migratorConfig, seederConfig } from '../../src/db/migrations/migrations-config.js';

/**
 * Fills the template database every suite database is cloned from: all migrations, then
 * the test seed (`seeds/test`), once per run. Every connection is closed before this
 * returns (CREATE DATABASE ... TEMPLATE refuses a template with open connections).
 */
export async function prepareTemplate(templateUrl: string): Promise<void> {
  const knex = knexFactory({
    client: 'pg',
    connection: templateUrl,
    pool: { min: 0, max: 1 },
    migrations: migratorConfig(),
    seeds: seederConfig('test'),
    // The seed guard reads the profile from here (see assertSeedingAllowed).
    userParams: { profile: 'test' },
  } as knexFactory.Knex.Config);
  try {
    await knex.migrate.latest();
    await knex.seed.run();
  } finally {
    await knex.destroy();
  }
}
