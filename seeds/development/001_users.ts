import type { Knex } from 'knex';
import { assertSeedingAllowed } from '../../src/db/migrations/migrations-config.js';
import { UserRepository } from '../../src/users/user-repository.js';
import type { NewUser } from '../../src/users/user-input.js';

/** Users the development seed loads. */
export const DEV_USER_COUNT = 1000;

const FIRST = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Radia', 'Tony'];
const LAST = [
  'Lovelace',
  'Hopper',
  'Turing',
  'Dijkstra',
  'Liskov',
  'Knuth',
  'Allen',
  'Thompson',
  'Perlman',
  'Hoare',
];

/**
 * The development users, the same on every run: a fixed-seed PRNG (mulberry32) picks the
 * names, emails are numbered (`user0001@example.test`), every tenth user is suspended.
 */
export function* developmentUsers(count = DEV_USER_COUNT): Generator<NewUser> {
  const random = mulberry32(20250101);
  for (let i = 1; i <= count; i++) {
    const first = FIRST[Math.floor(random() * FIRST.length)] ?? 'Ada';
    const last = LAST[Math.floor(random() * LAST.length)] ?? 'Lovelace';
    yield {
      email: `user${String(i).padStart(4, '0')}@example.test`,
      name: `${first} ${last}`,
      status: i % 10 === 0 ? 'suspended' : 'active',
    };
  }
}

/** Replaces every user with the development users (ids restart at 1) through COPY. */
export async function seed(knex: Knex): Promise<void> {
  assertSeedingAllowed(knex);
  await knex.transaction(async (trx) => {
    await trx.raw('truncate table users restart identity');
    await new UserRepository(knex).copyIn(developmentUsers(), trx);
  });
}

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
