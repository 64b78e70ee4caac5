import type { Knex } from 'knex';
import type { StatementCache } from './statement-cache.js';
import { LIST_ORDERS, type ListOrder, type UserCursorCodec } from './user-cursor.js';
import { fieldError } from './user-input.js';
import { USER_STATUSES, User, type UserRow, type UserStatus } from './user-model.js';

/** Options of `UserRepository.list`. */
export interface ListUsersOptions {
  /** Only users with this status; default every user not soft-deleted. */
  status?: UserStatus;
  /** Page size, 1..100; default 20. */
  limit?: number;
  /** `nextCursor` of the previous page, from a list with the same status and order. */
  cursor?: string;
  /** By id; default 'asc' (oldest first). */
  order?: ListOrder;
}

/** What `listUsers` works with, the repository's. */
export interface ListDeps {
  cursors: UserCursorCodec;
  statements: StatementCache;
}

/** One page of a user list. */
export interface UserPage {
  items: User[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

/** Page size of a list call that gives none, rows. */
export const LIST_LIMIT_DEFAULT = 20;
/** Largest page size a list call may ask for, rows. */
export const LIST_LIMIT_MAX = 100;

/** The columns every user read selects. */
export const USER_COLUMNS = [
  'id',
  'email',
  'name',
  'status',
  'version',
  'created_at',
  'updated_at',
  'deleted_at',
];

/**
 * One page of users in id order by keyset pagination (`where id > last order by id limit n+1`):
 * stable under concurrent inserts and constant cost per page, unlike OFFSET. The extra row
 * tells whether a next page exists without a count.
 *
 * @throws ValidationError on `status`, `limit`, `order` or `cursor` (a cursor that is
 *   malformed, altered, or from a list with another status or order), before any SQL runs.
 */
export async function listUsers(
  executor: Knex | Knex.Transaction,
  deps: ListDeps,
  opts: ListUsersOptions,
): Promise<UserPage> {
  const { cursors, statements } = deps;
  const status = parseStatusFilter(opts.status);
  const limit = opts.limit ?? LIST_LIMIT_DEFAULT;
  if (!Number.isInteger(limit) || limit < 1 || limit > LIST_LIMIT_MAX) {
    throw fieldError('limit', `must be an integer from 1 to ${LIST_LIMIT_MAX}`, 'range');
  }
  const order = opts.order ?? 'asc';
  if (!(LIST_ORDERS as readonly unknown[]).includes(order))
    throw fieldError('order', "must be 'asc' or 'desc'", 'enum');
  const after =
    opts.cursor === undefined ? undefined : cursors.decode(opts.cursor, { status, order }).afterId;
  // One SQL text per shape (filter x first page or not x order), compiled once and, with
  // `preparedStatements`, prepared once per connection.
  const shape = `${status === null ? 'live' : 'status'}_${after === undefined ? 'first' : 'after'}_${order}`;
  const bindings: Array<string | number> = [];
  if (status !== null) bindings.push(status);
  if (after !== undefined) bindings.push(after);
  bindings.push(limit + 1);
  const rows = await statements.rows<UserRow>(executor, `users_list_${shape}`, bindings, () => {
    const query = whereStatus(executor('users').select(USER_COLUMNS), status);
    if (after !== undefined) void query.where('id', order === 'asc' ? '>' : '<', after);
    return query.orderBy('id', order).limit(limit + 1);
  });
  const items = rows.slice(0, limit).map((row) => User.fromRow(row));
  const last = items.at(-1);
  const nextCursor = rows.length > limit && last ? cursors.encode({ afterId: last.id, status, order }) : null;
  return { items, nextCursor };
}

/**
 * A list's status filter: a known status, or null for "every user not soft-deleted".
 * @throws ValidationError when `status` is given and is not one of `USER_STATUSES`.
 */
export function parseStatusFilter(status: unknown): UserStatus | null {
  if (status === undefined) return null;
  if ((USER_STATUSES as readonly unknown[]).includes(status)) return status as UserStatus;
  throw fieldError('status', `must be one of ${USER_STATUSES.join(', ')}`, 'enum');
}

/** Narrows `query` to the filter of `parseStatusFilter` (null: not soft-deleted). */
export function whereStatus<Q extends Knex.QueryBuilder>(query: Q, status: UserStatus | null): Q {
  return (status === null ? query.whereNull('deleted_at') : query.where('status', status)) as Q;
}
