import type { Knex } from 'knex';
import { assertSeedingAllowed } from '../../src/db/migrations/migrations-config.js';

/** One user of the test seed, as stored (ids are assigned 1, 2, 3, ... in this order). */
export interface SeedUser {
  id: string;
  email: string;
  name: string;
  status: 'active' | 'suspended' | 'deleted';
}

/**
 * The small, fixed data every test database starts with (cloned from the template).
 * Tests may rely on it: three active users, one suspended, one soft-deleted.
 */
export const TEST_USERS: readonly SeedUser[] = [
  { id: '1', email: 'ada@example.com', name: 'Ada Lovelace', status: 'active' },
  { id: '2', email: 'grace@example.com', name: 'Grace Hopper', status: 'active' },
  { id: '3', email: 'alan@example.com', name: 'Alan Turing', status: 'suspended' },
  { id: '4', email: 'edsger@example.com', name: 'Edsger Dijkstra', status: 'deleted' },
  { id: '5', email: 'barbara@example.com', name: 'Barbara Liskov', status: 'active' },
];

/** Replaces every user with TEST_USERS; ids restart at 1 so they are the same every run. */
export async function seed(knex: Knex): Promise<void> {
  assertSeedingAllowed(knex);
  await knex.raw('truncate table users restart identity');
  await knex('users').insert(
    TEST_USERS.map(({ email, name, status }) => ({
      email,
      name,
      status,
      deleted_at: status === 'deleted' ? knex.fn.now() : null,
    })),
  );
}
