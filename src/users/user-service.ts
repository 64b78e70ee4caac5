import type { TransactionConfig } from '../config/app-config.js';
import {
  isTransient,
  retryAfterFailure,
  translateError,
  type CircuitBreaker,
  type TxManager,
  type TxOptions,
} from '../db/index.js';
import type { AuditContext, AuditEntry, AuditRepository } from '../audit/audit-repository.js';
import type { Logger } from '../observability/logger.js';
import { fieldError, type NewUser, type UserPatch } from './user-input.js';
import { LISTED_USER_STATUSES, type User, type UserStatus } from './user-model.js';
import type { UserPage, UserRepository } from './user-repository.js';

/** The transaction and resilience collaborators of {@link UserService}. */
export interface UserServiceDeps {
  users: UserRepository;
  tx: TxManager;
  /** Every call runs through it: fails fast while the database is known to be unreachable. */
  breaker: Pick<CircuitBreaker, 'execute'>;
  /**
   * Retry and timeout settings (config `database.transactions`): the retry of a one-statement
   * read follows the transactions' `maxAttempts`/`baseDelay`/`maxDelay`; a `defaultTimeout`
   * above 0 keeps reads in read-only transactions, which enforce it. Default: 3 attempts,
   * 20 ms / 1 s backoff, no timeout.
   */
  transactions?: Pick<TransactionConfig, 'maxAttempts' | 'baseDelay' | 'maxDelay' | 'defaultTimeout'>;
  /** Where a retried read says so (one warn line per retry); none when absent. */
  logger?: Logger;
  /**
   * The audit trail: every write records who, what and when in its own transaction
   * (`AuditRepository.record`). Absent: writes are not audited (the service always passes one).
   */
  audit?: AuditRepository;
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

const READ_RETRY_DEFAULTS = { maxAttempts: 3, baseDelay: 20, maxDelay: 1_000, defaultTimeout: 0 };

/**
 * The users use cases: owns transaction boundaries and business rules; every call runs
 * through the circuit breaker.
 *
 * Boundaries:
 * - Writes are one transaction each through `TxManager` (see `WRITE`), retried on transient
 *   failures.
 * - Reads of one statement (`get`, `list`: the page is one `select ... limit n+1`) run on the
 *   pool without a transaction. A single statement is atomic and sees one snapshot on its
 *   own; `BEGIN READ ONLY` and `COMMIT` around it would add two round trips and a knex
 *   transaction object and guarantee nothing more. They keep what the transaction gave them:
 *   the session's `statement_timeout` and `lock_timeout` (startup parameters of every pool
 *   connection, so they hold outside transactions too), errors translated to the same typed
 *   errors, and retry of transient failures (a lost connection, a failover) with the
 *   transactions' attempts and backoff: a read is idempotent. Inside a caller's ambient
 *   transaction they join it and are not retried (only the outermost transaction retries).
 *   With a `defaultTimeout` configured they run in read-only transactions, which enforce it.
 * - A read made of several statements that must agree with each other (a page and its total
 *   count, say) belongs in one `withReadOnlyTransaction`, so that every statement sees the
 *   same snapshot: none of today's reads is one.
 *
 * Rules:
 * - Emails are normalised before they are stored or compared: surrounding whitespace
 *   trimmed, Unicode NFC, lower case. (Uniqueness is case-insensitive in the table too.)
 * - A soft-deleted user is gone for this API: reading, updating or deleting it again is
 *   `NotFoundError`; `deleted` cannot be set through an update (only `remove`).
 * - Updates are conditional on the version the client last saw (optimistic locking).
 * - An import is all-or-nothing and is never retried: its source is a stream that cannot be
 *   replayed.
 * - With an audit trail (`deps.audit`), every write inserts its audit record (the caller's
 *   `AuditContext`, the action, the user's id, the names of the fields it set) in the same
 *   transaction, after the write: a write that fails leaves no record, a record that cannot
 *   be written fails the write, and a caller's ambient transaction that rolls back takes both.
 *
 * @throws CircuitOpenError from every method while the breaker is open.
 */
export class UserService {
  readonly #users: UserRepository;
  readonly #tx: TxManager;
  readonly #breaker: Pick<CircuitBreaker, 'execute'>;
  readonly #retry: Required<NonNullable<UserServiceDeps['transactions']>>;
  readonly #logger: Logger | undefined;
  readonly #audit: AuditRepository | undefined;

  /** Keeps its collaborators; nothing runs until a method is called. */
  constructor(deps: UserServiceDeps) {
    this.#users = deps.users;
    this.#tx = deps.tx;
    this.#breaker = deps.breaker;
    this.#retry = { ...READ_RETRY_DEFAULTS, ...deps.transactions };
    this.#logger = deps.logger;
    this.#audit = deps.audit;
  }

  /** @throws ValidationError naming the bad fields; UniqueViolationError for a taken email (any case). */
  create(input: NewUser, context: AuditContext = {}): Promise<User> {
    return this.#write(async () => {
      const user = await this.#users.create(normaliseUser(input));
      await this.#record(context, { action: 'create', entityId: user.id, fields: fieldNames(input) });
      return user;
    });
  }

  /** @throws NotFoundError when no live user has the id (also for a malformed id). */
  get(id: string): Promise<User> {
    return this.#statementRead(() => this.#users.getById(id));
  }

  /**
   * One page in id order (one statement), of live users only: a soft-deleted user is gone for
   * this API, so `status: 'deleted'` is refused (the repository's own `list` still reaches them).
   * @throws ValidationError on `status` (`active` or `suspended`), `limit` or `cursor`.
   */
  list(query: ListUsersQuery): Promise<UserPage> {
    if (query.status !== undefined && !(LISTED_USER_STATUSES as readonly unknown[]).includes(query.status))
      return Promise.reject(
        fieldError('status', `must be one of ${LISTED_USER_STATUSES.join(', ')}`, 'enum'),
      );
    return this.#statementRead(() => this.#users.list(query));
  }

  /**
   * Applies `patch` if the user is still at `expectedVersion`.
   * @throws NotFoundError (unknown or deleted user); OptimisticLockError (version moved);
   *   ValidationError; UniqueViolationError (email taken).
   */
  update(id: string, patch: UserPatch, expectedVersion: number, context: AuditContext = {}): Promise<User> {
    return this.#write(async () => {
      const user = await this.#users.update(id, normaliseUser(patch), expectedVersion);
      await this.#record(context, { action: 'update', entityId: user.id, fields: fieldNames(patch) });
      return user;
    });
  }

  /** Soft delete. @throws NotFoundError when no live user has the id. */
  remove(id: string, context: AuditContext = {}): Promise<User> {
    return this.#write(async () => {
      const user = await this.#users.softDelete(id);
      await this.#record(context, { action: 'delete', entityId: user.id });
      return user;
    });
  }

  /**
   * Bulk import through COPY: all rows or none, consumed as they arrive (never buffered
   * whole). Errors name the 0-based row in `rowIndex`.
   * @returns the number of users imported.
   */
  import(rows: AsyncIterable<unknown>, context: AuditContext = {}): Promise<number> {
    return this.#breaker.execute(() =>
      this.#tx.withTransaction(
        async () => {
          const imported = await this.#users.copyIn(normaliseRows(rows));
          await this.#record(context, { action: 'import', rowCount: imported });
          return imported;
        },
        { retry: false },
      ),
    );
  }

  /** The audit record of a user write, in the write's transaction (the ambient one). */
  async #record(context: AuditContext, what: Omit<AuditEntry, 'entity' | keyof AuditContext>): Promise<void> {
    await this.#audit?.record({ ...context, entity: 'user', ...what });
  }

  /** A read of one statement: no transaction (see the class doc for what it keeps). */
  #statementRead<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#retry.defaultTimeout > 0)
      return this.#breaker.execute(() => this.#tx.withReadOnlyTransaction(fn));
    // In a caller's transaction: join it and leave retry to its outermost transaction.
    return this.#breaker.execute(() =>
      this.#tx.current() ? fn() : fn().catch((err: unknown) => this.#retryRead(fn, err)),
    );
  }

  /** Re-runs a statement read whose first attempt failed with `err`, while the failure is transient. */
  async #retryRead<T>(fn: () => Promise<T>, first: unknown): Promise<T> {
    // The transactions' own retry schedule (full jitter, same attempts and delays).
    let attempts = 1;
    try {
      return await retryAfterFailure(
        first,
        (attempt) => {
          attempts = attempt;
          return fn();
        },
        {
          maxAttempts: this.#retry.maxAttempts,
          baseDelayMs: this.#retry.baseDelay,
          maxDelayMs: this.#retry.maxDelay,
          shouldRetry: (err) => isTransient(err),
          onRetry: ({ attempt, delayMs, error }) =>
            this.#logger?.warn(
              { err: translateError(error, { attempts: attempt }), attempt, delayMs },
              'read failed transiently; retrying',
            ),
        },
      );
    } catch (err) {
      throw translateError(err, { attempts });
    }
  }

  #write<T>(fn: () => Promise<T>): Promise<T> {
    return this.#breaker.execute(() => this.#tx.withTransaction(fn, WRITE));
  }
}

/** The names of the fields a write was given, sorted: what the audit trail records, never the values. */
function fieldNames(input: object): string[] {
  return Object.keys(input).sort();
}

/** Trimmed, NFC, lower case; a non-string is left for validation to reject. */
export function normaliseEmail(email: unknown): unknown {
  if (typeof email !== 'string') return email;
  const trimmed = email.trim();
  // Printable ASCII is already NFC; ICU's normalize() is most of this function's cost otherwise.
  return (PRINTABLE_ASCII.test(trimmed) ? trimmed : trimmed.normalize('NFC')).toLowerCase();
}

const PRINTABLE_ASCII = /^[ -~]*$/;

function normaliseUser<T extends Partial<NewUser>>(input: T): T {
  if (typeof input !== 'object' || input === null || !('email' in input)) return input;
  return { ...input, email: normaliseEmail(input.email) };
}

async function* normaliseRows(rows: AsyncIterable<unknown>): AsyncGenerator<unknown> {
  for await (const row of rows) yield normaliseUser(row as Partial<NewUser>);
}
