import type { Knex } from 'knex';
import {
  NotFoundError,
  OptimisticLockError,
  executorFor,
  translateError,
  type Executor,
} from '../db/index.js';
import { copyUsersIn, type UserRows } from './user-copy-in.js';
import { insertUsersInChunks } from './user-insert-many.js';
import { UserCursorCodec } from './user-cursor.js';
import { StatementCache } from './statement-cache.js';
import {
  fieldError,
  isUserId,
  validateNewUser,
  validateNewUsers,
  validatePatch,
  type NewUser,
  type UserPatch,
} from './user-input.js';
import {
  USER_COLUMNS,
  listUsers,
  parseStatusFilter,
  whereStatus,
  type ListUsersOptions,
  type UserPage,
} from './user-list.js';
import { EMAIL_MAX_LENGTH, User, type UserRow, type UserStatus } from './user-model.js';

export { LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, type ListUsersOptions, type UserPage } from './user-list.js';

export type { Executor } from '../db/index.js';

/** Optional settings of a {@link UserRepository}. */
export interface UserRepositoryOptions {
  /**
   * Run the statements sent on every call (point reads, list pages, insert, update) as
   * named prepared statements, parsed and planned once per connection. Default true; turn
   * off behind PgBouncer in transaction mode, where a statement prepared on one server
   * connection is missing on the next.
   */
  preparedStatements?: boolean;
  /** Signs list cursors with HMAC-SHA256 so any edit is detected; default none (validated only). */
  cursorSecret?: string;
  /** Rows per multi-row INSERT in `insertMany`, 1..20000 (3 bind values each, under pg's 65535); default 1000. */
  insertChunkSize?: number;
}

/**
 * Users: reads, writes with optimistic locking, soft delete, and bulk loads.
 *
 * Every method takes an optional last `executor`; without one it joins the ambient
 * transaction (`TxManager.withTransaction`), else it uses the pool. Soft-deleted users
 * are invisible to `find*`/`get*`/`update` and to `list`/`count` without a status filter;
 * `list({ status: 'deleted' })` and `restore` reach them. Ids are strings (bigint, see
 * `User`). Input is validated before any SQL runs: bad input is a `ValidationError`
 * naming the fields, never a SQL error.
 *
 * ```ts
 * const users = new UserRepository(db.driver(), { preparedStatements: cfg.database.postgres.preparedStatements });
 * const ada = await users.create({ email: 'ada@example.com', name: 'Ada' });
 * const renamed = await users.update(ada.id, { name: 'Ada L.' }, ada.version);
 * const { items, nextCursor } = await users.list({ status: 'active', limit: 50 });
 * ```
 */
export class UserRepository {
  readonly #knex: Knex;
  readonly #cursors: UserCursorCodec;
  readonly #chunkSize: number;
  readonly #statements: StatementCache;

  /** @throws RangeError when `insertChunkSize` is out of range. */
  constructor(knex: Knex, opts: UserRepositoryOptions = {}) {
    this.#knex = knex;
    this.#statements = new StatementCache({ prepared: opts.preparedStatements ?? true });
    this.#cursors = new UserCursorCodec(opts.cursorSecret);
    this.#chunkSize = opts.insertChunkSize ?? 1000;
    if (!Number.isInteger(this.#chunkSize) || this.#chunkSize < 1 || this.#chunkSize > 20_000) {
      throw new RangeError('insertChunkSize must be an integer from 1 to 20000.');
    }
  }

  /**
   * Inserts a user (status defaults to `active`).
   * @throws ValidationError naming the bad fields; UniqueViolationError when the email
   *   exists in any letter case.
   */
  async create(input: NewUser, executor?: Executor): Promise<User> {
    const valid = validateNewUser(input);
    const ex = this.#ex(executor);
    // knex, not `User.query().insert()`: objection would validate the row a second time and
    // map it twice more, for the same statement.
    const rows = await translated(
      this.#statements.rows<UserRow>(ex, 'users_create', [valid.email, valid.name, valid.status], () =>
        ex('users').insert(valid, USER_COLUMNS),
      ),
    );
    return User.fromRow(rows[0]!);
  }

  /** @throws NotFoundError when no live user has this id. */
  getById(id: string, executor?: Executor): Promise<User> {
    return this.findById(id, executor).then((user) => user ?? throwNotFound());
  }

  /** The live user with this id, or undefined (also for a malformed id). */
  async findById(id: string, executor?: Executor): Promise<User | undefined> {
    if (!isUserId(id)) return undefined;
    const ex = this.#ex(executor);
    const rows = await this.#statements.rows<UserRow>(ex, 'users_find_by_id', [id, 1], () =>
      ex('users').select(USER_COLUMNS).where('id', id).whereNull('deleted_at').first(),
    );
    return toUser(rows[0]);
  }

  /**
   * The live user with this email in any letter case, or undefined.
   * @throws ValidationError when `email` is not a string or contains NUL.
   */
  async findByEmail(email: string, executor?: Executor): Promise<User | undefined> {
    assertSearchString('email', email);
    if (email.length > EMAIL_MAX_LENGTH) return undefined;
    const ex = this.#ex(executor);
    const rows = await this.#statements.rows<UserRow>(ex, 'users_find_by_email', [email, 1], () =>
      ex('users')
        .select(USER_COLUMNS)
        .whereRaw('lower(email) = lower(?)', [email])
        .whereNull('deleted_at')
        .first(),
    );
    return toUser(rows[0]);
  }

  /**
   * One page of users in id order (keyset pagination: stable under concurrent inserts,
   * constant cost per page); `limit` defaults to 20 rows, at most 100; `order` to 'asc'.
   * @throws ValidationError on `status`, `limit`, `order` or `cursor` (a cursor that is
   *   malformed, altered, or from a list with another status or order).
   */
  async list(opts: ListUsersOptions = {}, executor?: Executor): Promise<UserPage> {
    return listUsers(this.#ex(executor), { cursors: this.#cursors, statements: this.#statements }, opts);
  }

  /**
   * Applies `patch` if the user is still at `expectedVersion`; bumps the version. Nothing is
   * written otherwise.
   * @throws ValidationError on the patch or version; NotFoundError when no live user has the
   *   id; OptimisticLockError when the version moved; UniqueViolationError for a taken email.
   */
  async update(id: string, patch: UserPatch, expectedVersion: number, executor?: Executor): Promise<User> {
    if (!Number.isInteger(expectedVersion) || expectedVersion < 1) {
      throw fieldError('expectedVersion', 'must be an integer of at least 1', 'minimum');
    }
    const valid = validatePatch(patch);
    if (!isUserId(id)) throwNotFound();
    const ex = this.#ex(executor);
    // knex, not `User.query().patch()` (see `create`); `updated_at` as BaseModel's
    // $beforeUpdate sets it: the database clock.
    // One SQL text per set of changed fields.
    const fields = Object.keys(valid) as Array<keyof UserPatch>;
    const rows = await translated(
      this.#statements.rows<UserRow>(
        ex,
        `users_update_${fields.join('_')}`,
        [...fields.map((f) => valid[f]!), id, expectedVersion],
        () =>
          ex('users')
            .update({ ...valid, updated_at: ex.fn.now(), version: ex.raw('version + 1') }, USER_COLUMNS)
            .where('id', id)
            .where('version', expectedVersion)
            .whereNull('deleted_at'),
      ),
    );
    if (rows[0]) return User.fromRow(rows[0]);
    const current: unknown = await ex('users')
      .select('version')
      .where('id', id)
      .whereNull('deleted_at')
      .first();
    if (current) throw new OptimisticLockError('User', id, expectedVersion);
    throwNotFound();
  }

  /**
   * Marks a live user deleted (status `deleted`, `deleted_at` now, version + 1).
   * @throws NotFoundError when no live user has the id.
   */
  async softDelete(id: string, executor?: Executor): Promise<User> {
    if (!isUserId(id)) throwNotFound();
    const ex = this.#ex(executor);
    const rows = await this.#statements.rows<UserRow>(ex, 'users_soft_delete', ['deleted', id], () =>
      ex('users')
        .where('id', id)
        .whereNull('deleted_at')
        .update(
          {
            status: 'deleted',
            deleted_at: ex.fn.now(),
            updated_at: ex.fn.now(),
            version: ex.raw('version + 1'),
          },
          USER_COLUMNS,
        ),
    );
    return toUser(rows[0]) ?? throwNotFound();
  }

  /**
   * Brings a soft-deleted user back as `active` (version + 1).
   * @throws NotFoundError when no soft-deleted user has the id.
   */
  async restore(id: string, executor?: Executor): Promise<User> {
    if (!isUserId(id)) throwNotFound();
    const ex = this.#ex(executor);
    const rows = await ex('users')
      .where('id', id)
      .whereNotNull('deleted_at')
      .update(
        { status: 'active', deleted_at: null, updated_at: ex.fn.now(), version: ex.raw('version + 1') },
        USER_COLUMNS,
      );
    return toUser(rows[0]) ?? throwNotFound();
  }

  /** Users with `status`, or every user not soft-deleted. @throws ValidationError on `status`. */
  async count(opts: { status?: UserStatus } = {}, executor?: Executor): Promise<number> {
    const status = parseStatusFilter(opts.status);
    const query = whereStatus(this.#ex(executor)<{ count: string }>('users'), status);
    const [row] = (await query.count({ count: '*' })) as unknown as Array<{ count: string }>;
    return Number(row?.count ?? 0);
  }

  /**
   * Inserts the user, or, when the email exists in any letter case, updates its name (and
   * its status when one is given: a given status also restores a soft-deleted user). One
   * statement (`INSERT ... ON CONFLICT (lower(email)) DO UPDATE`), safe under concurrency.
   * The stored email keeps its original spelling.
   * @throws ValidationError naming the bad fields.
   */
  async upsertByEmail(input: NewUser, executor?: Executor): Promise<{ user: User; created: boolean }> {
    const valid = validateNewUser(input);
    const statusGiven = input.status !== undefined;
    const result = await this.#ex(executor).raw<{ rows: Array<Record<string, unknown>> }>(
      `insert into users (email, name, status) values (?, ?, ?)
       on conflict ((lower(email))) do update set
         name = excluded.name,
         status = case when ?::boolean then excluded.status else users.status end,
         deleted_at = case when ?::boolean then null else users.deleted_at end,
         version = users.version + 1,
         updated_at = now()
       returning ${USER_COLUMNS.join(', ')}, (xmax = 0) as inserted`,
      [valid.email, valid.name, valid.status, statusGiven, statusGiven],
    );
    const { inserted, ...row } = result.rows[0] ?? {};
    return { user: User.fromRow(row as unknown as UserRow), created: inserted === true };
  }

  /**
   * Inserts many users with chunked multi-row INSERTs in one transaction (a savepoint
   * inside an outer one): all or none. Every row is validated before the first INSERT.
   * @returns the number of rows inserted.
   * @throws ValidationError for the first invalid row (keys `rows[i].field`, `rowIndex`);
   *   UniqueViolationError with `rowIndex` for the first row whose email is already taken
   *   (in the table or earlier in `rows`).
   */
  async insertMany(rows: readonly NewUser[], executor?: Executor): Promise<number> {
    if (!Array.isArray(rows)) throw fieldError('rows', 'must be an array', 'type');
    const valid = validateNewUsers(rows);
    if (valid.length === 0) return 0;
    return insertUsersInChunks(this.#ex(executor), valid, this.#chunkSize);
  }

  /**
   * Bulk load through `COPY ... FROM STDIN` (the fast path for large imports): rows are
   * validated as they stream, all or none are written, and an async iterable is consumed
   * with backpressure, never held whole. See `copyUsersIn` for the error contract.
   * @returns the number of rows written.
   */
  async copyIn(rows: UserRows, executor?: Executor): Promise<number> {
    return copyUsersIn(this.#ex(executor), rows);
  }

  #ex(explicit?: Executor): Executor {
    return executorFor(this.#knex, explicit);
  }
}

function toUser(row: unknown): User | undefined {
  return typeof row === 'object' && row !== null ? User.fromRow(row as UserRow) : undefined;
}

/**
 * A knex write, its driver error translated as objection's query builder translates it
 * (`UniqueViolationError` for a taken email...), also when no transaction is around it.
 */
async function translated<T>(query: PromiseLike<T>): Promise<T> {
  try {
    return await query;
  } catch (err) {
    throw translateError(err);
  }
}

function throwNotFound(): never {
  throw new NotFoundError({ modelClass: User, message: 'User not found.' });
}

function assertSearchString(field: string, value: unknown): asserts value is string {
  if (typeof value !== 'string') throw fieldError(field, 'must be a string', 'type');
  if (value.includes('\u0000')) throw fieldError(field, 'must not contain NUL (U+0000) characters', 'noNul');
}
