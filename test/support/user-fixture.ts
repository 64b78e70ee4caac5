import type { Knex } from 'knex';
import pino from 'pino';
import { PostgresDatabase } from '../../src/db/postgres-database.js';
import { UserRepository, type UserRepositoryOptions } from '../../src/users/user-repository.js';
import { createTestDatabase, type TestDatabase } from './test-database.js';

/** What a users suite works with: its own seeded database, a connected PostgresDatabase, a repository. */
export interface UserFixture {
  testDb(): TestDatabase;
  database(): PostgresDatabase;
  knex(): Knex;
  repo(): UserRepository;
}

/**
 * Mocha helper: a fresh database cloned from the template (migrated, test seed loaded), a
 * connected PostgresDatabase on it and a UserRepository, for the enclosing `describe`.
 * The pool is closed before the database is dropped.
 */
export function useUserRepository(opts: UserRepositoryOptions = {}): UserFixture {
  let testDb: TestDatabase | undefined;
  let database: PostgresDatabase | undefined;
  let repo: UserRepository | undefined;
  before(async () => {
    testDb = await createTestDatabase();
    database = new PostgresDatabase(testDb.config(), pino({ level: 'silent' }));
    await database.connect();
    repo = new UserRepository(database.driver(), opts);
  });
  after(async () => {
    await database?.close();
    await testDb?.drop();
  });
  const need = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('useUserRepository(): available only inside hooks and tests');
    return value;
  };
  return {
    testDb: () => need(testDb),
    database: () => need(database),
    knex: () => need(database).driver(),
    repo: () => need(repo),
  };
}

/** Every row of `users`, ordered by id, as plain objects (for before/after comparisons). */
export async function snapshotUsers(knex: Knex): Promise<unknown[]> {
  return knex('users').select('*').orderBy('id');
}
