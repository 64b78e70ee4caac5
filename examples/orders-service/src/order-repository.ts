import type { Knex } from 'knex';
import { NotFoundError, OptimisticLockError, executorFor, type Executor } from 'pg-data-layer';
import { Order } from './order-model.js';

/**
 * Data access for orders. Every method joins the ambient transaction when none is passed
 * (`executorFor`), so a service method's `withTransaction` covers the calls inside it.
 */
export class OrderRepository {
  constructor(private readonly knex: Knex) {}

  /** @throws NotFoundError when there is no such order. */
  async getById(id: string, trx?: Executor): Promise<Order> {
    const order = await Order.query(executorFor(this.knex, trx)).findById(id);
    if (!order) throw new NotFoundError({ message: `order ${id} not found`, modelClass: Order });
    return order;
  }

  async listByCustomer(customer: string, trx?: Executor): Promise<Order[]> {
    return await Order.query(executorFor(this.knex, trx)).where({ customer }).orderBy('id');
  }

  async create(input: { customer: string; item: string; quantity: number }, trx?: Executor): Promise<Order> {
    return await Order.query(executorFor(this.knex, trx)).insertAndFetch(input);
  }

  /** Sets the quantity if the order is still at `version`. @throws OptimisticLockError otherwise. */
  async setQuantity(id: string, quantity: number, version: number, trx?: Executor): Promise<Order> {
    const updated = await Order.query(executorFor(this.knex, trx))
      .patch({ quantity, version: version + 1 })
      .where({ id, version })
      .returning('*')
      .first();
    if (!updated) throw new OptimisticLockError('Order', id, version);
    return updated as unknown as Order;
  }
}
