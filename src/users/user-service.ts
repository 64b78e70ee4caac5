import type { CircuitBreaker, TxManager, TxOptions } from '../db/index.js';
import type { NewUser, UserPatch } from './user-input.js';
import type { User, UserStatus } from './user-model.js';
import type { UserPage, UserRepository } from './user-repository.js';

/** The transaction and resilience collaborators of {@link UserService}. */
export interface UserServiceDeps {
  users: UserRepository;
  tx: TxManager;
  /** Every call runs through it: fails fast while the database is known to be unreachable. */
  breaker: Pick<CircuitBreaker, 'execute'>;
}

/** Options of a list call. */
export interface ListUsersQuery {
  status?: UserStatus;
  limit?: number;
  cursor?: string;
}

/**
 * Writes run at repeatable read: the row a write checks (its version, its deleted flag) is
 * the row it changes, and a concurrent write to it surfaces as a serialization failure
 * (40001), which the transaction manager retries with backoff; the retry then sees the new
 * version and answers with the optimistic-lock verdict.
 */
const WRITE: TxOptions = { isolationLevel: 'repeatable read' };

/**
 * The users use cases: owns transaction boundaries (every call is one transaction through
 * `TxManager`, retried on transient failures) and business rules; every call runs through
 * the circuit breaker.
 *
 * Rules:
 * - Emails are normalised before they are stored or compared: surrounding whitespace
 *   trimmed, Unicode NFC, lower case. (Uniqueness is case-insensitive in the table too.)
 * - A soft-deleted user is gone for this API: reading, updating or deleting it again is
 *   `NotFoundError`; `deleted` cannot be set through an update (only `remove`).
 * - Updates are conditional on the version the client last saw (optimistic locking).
 * - An import is all-or-nothing and is never retried: its source is a stream that cannot be
 *   replayed.
 *
 * @throws CircuitOpenError from every method while the breaker is open.
 */
export class UserService {
  readonly #users: UserRepository;
  readonly #tx: TxManager;
  readonly #breaker: Pick<CircuitBreaker, 'execute'>;

  /** Keeps its collaborators; nothing runs until a method is called. */
  constructor(deps: UserServiceDeps) {
    this.#users = deps.users;
    this.#tx = deps.tx;
    this.#breaker = deps.breaker;
  }

  /** @throws ValidationError naming the bad fields; UniqueViolationError for a taken email (any case). */
  create(input: NewUser): Promise<User> {
    return this.#write(() => this.#users.create(normaliseUser(input)));
  }

  /** @throws NotFoundError when no live user has the id (also for a malformed id). */
  get(id: string): Promise<User> {
    return this.#read(() => this.#users.getById(id));
  }

  /** One page in id order. @throws ValidationError on `limit` or `cursor`. */
  list(query: ListUsersQuery): Promise<UserPage> {
    return this.#read(() => this.#users.list(query));
  }

  /**
   * Applies `patch` if the user is still at `expectedVersion`.
   * @throws NotFoundError (unknown or deleted user); OptimisticLockError (version moved);
   *   ValidationError; UniqueViolationError (email taken).
   */
  update(id: string, patch: UserPatch, expectedVersion: number): Promise<User> {
    return this.#write(() => this.#users.update(id, normaliseUser(patch), expectedVersion));
  }

  /** Soft delete. @throws NotFoundError when no live user has the id. */
  remove(id: string): Promise<User> {
    return this.#write(() => this.#users.softDelete(id));
  }

  /**
   * Bulk import through COPY: all rows or none, consumed as they arrive (never buffered
   * whole). Errors name the 0-based row in `rowIndex`.
   * @returns the number of users imported.
   */
  import(rows: AsyncIterable<unknown>): Promise<number> {
    return this.#breaker.execute(() =>
      this.#tx.withTransaction(() => this.#users.copyIn(normaliseRows(rows)), { retry: false }),
    );
  }

  #read<T>(fn: () => Promise<T>): Promise<T> {
    return this.#breaker.execute(() => this.#tx.withReadOnlyTransaction(fn));
  }

  #write<T>(fn: () => Promise<T>): Promise<T> {
    return this.#breaker.execute(() => this.#tx.withTransaction(fn, WRITE));
  }
}

/** Trimmed, NFC, lower case; a non-string is left for validation to reject. */
export function normaliseEmail(email: unknown): unknown {
  return typeof email === 'string' ? email.trim().normalize('NFC').toLowerCase() : email;
}

function normaliseUser<T extends Partial<NewUser>>(input: T): T {
  if (typeof input !== 'object' || input === null || !('email' in input)) return input;
  return { ...input, email: normaliseEmail(input.email) };
}

async function* normaliseRows(rows: AsyncIterable<unknown>): AsyncGenerator<unknown> {
  for await (const row of rows) yield normaliseUser(row as Partial<NewUser>);
}
