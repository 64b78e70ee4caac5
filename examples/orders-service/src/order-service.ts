import { ValidationError, type TxManager } from 'pg-data-layer';
import type { Order } from './order-model.js';
import type { OrderRepository } from './order-repository.js';

/** Business rules over orders; owns the transaction boundaries. */
export class OrderService {
  constructor(
    private readonly orders: OrderRepository,
    private readonly tx: TxManager,
    private readonly limits: { maxItemsPerOrder: number },
  ) {}

  /** Places an order; a second order of the same item by the same customer is a 409 (unique violation). */
  place(input: { customer: string; item: string; quantity: number }): Promise<Order> {
    if (input.quantity > this.limits.maxItemsPerOrder) {
      const message = `must be at most ${this.limits.maxItemsPerOrder}`;
      return Promise.reject(
        new ValidationError({
          type: 'ModelValidation',
          data: { quantity: [{ message, keyword: 'maximum', params: {} }] },
        }),
      );
    }
    return this.tx.withTransaction(() => this.orders.create(input));
  }

  get(id: string): Promise<Order> {
    return this.orders.getById(id);
  }

  /** Read-modify-write in one serializable transaction, retried on 40001 by the layer. */
  addOne(id: string): Promise<Order> {
    return this.tx.withTransaction(
      async () => {
        const order = await this.orders.getById(id);
        return this.orders.setQuantity(id, order.quantity + 1, order.version);
      },
      { isolationLevel: 'serializable' },
    );
  }
}
