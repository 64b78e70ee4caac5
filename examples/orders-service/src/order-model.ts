import { BaseModel } from 'pg-data-layer';

/** One order row; columns are snake_case in the table, camelCase here (BaseModel's mappers). */
export class Order extends BaseModel {
  static override tableName = 'orders';

  id!: string;
  customer!: string;
  item!: string;
  quantity!: number;
  version!: number;

  static override jsonSchema = {
    type: 'object',
    required: ['customer', 'item', 'quantity'],
    properties: {
      customer: { type: 'string', minLength: 1, maxLength: 100 },
      item: { type: 'string', minLength: 1, maxLength: 100 },
      quantity: { type: 'integer', minimum: 1 },
    },
  };
}
