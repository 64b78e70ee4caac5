import type { Knex } from 'knex';
import { assertSeedingAllowed } from 'pg-data-layer';

/** What every test database starts with. */
export async function seed(knex: Knex): Promise<void> {
  assertSeedingAllowed(knex);
  await knex.raw('truncate table orders restart identity');
  await knex('orders').insert([
    { customer: 'ada', item: 'notebook', quantity: 2 },
    { customer: 'grace', item: 'compiler', quantity: 1 },
  ]);
}
