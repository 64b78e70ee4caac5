import type { Knex } from 'knex';
import { assertSeedingAllowed } from 'pg-data-layer';

export async function seed(knex: Knex): Promise<void> {
  assertSeedingAllowed(knex);
  await knex.raw('truncate table orders restart identity');
  const rows = Array.from({ length: 50 }, (_, i) => ({
    customer: `customer${i}`,
    item: 'widget',
    quantity: i + 1,
  }));
  await knex('orders').insert(rows);
}
