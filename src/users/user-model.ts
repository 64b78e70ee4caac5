import type { JSONSchema } from 'objection';
import { BaseModel } from '../db/index.js';

/** Every status a user row can have (the table's CHECK constraint says the same). */
export const USER_STATUSES = ['active', 'suspended', 'deleted'] as const;
/** One of `USER_STATUSES`. */
export type UserStatus = (typeof USER_STATUSES)[number];

/**
 * Statuses the HTTP API and `UserService.list` filter by: a soft-deleted user is gone for the
 * API, so `deleted` is not one of them (the repository's `list({ status: 'deleted' })` still
 * reaches deleted users, for administration and `restore`).
 */
export const LISTED_USER_STATUSES = ['active', 'suspended'] as const;

/** Statuses a caller may write; `deleted` is set only by `softDelete()`, with `deleted_at`. */
export const WRITABLE_USER_STATUSES = ['active', 'suspended'] as const;
/** One of `WRITABLE_USER_STATUSES`. */
export type WritableUserStatus = (typeof WRITABLE_USER_STATUSES)[number];

/** Longest accepted email, characters (RFC 5321's path limit). */
export const EMAIL_MAX_LENGTH = 254;
/** Shortest accepted name, characters (Unicode code points). */
export const NAME_MIN_LENGTH = 1;
/** Longest accepted name, characters (Unicode code points). */
export const NAME_MAX_LENGTH = 200;

/** A row of `users` as pg returns it (int8 `id` as a string, timestamps as `Date`). */
export interface UserRow {
  id: string;
  email: string;
  name: string;
  status: UserStatus;
  version: number;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

/**
 * A row of `users`.
 *
 * `id` is a **string**: the column is `bigint` and pg returns int8 as a string because a JS
 * number loses precision past 2^53 - 1. Ids stay strings in the model, the repository and the
 * API (JSON has no 64-bit integers either); pg's global type parser is left alone.
 *
 * Validation (`jsonSchema`, run on `fromJson()` and every repository write): email format,
 * at most 254 characters; name 1..200 characters; status `active` | `suspended`; no other
 * properties; no NUL characters. `deletedAt` is kept out of `toJSON()` (the `status`
 * says a user is deleted; the timestamp is audit data).
 */
export class User extends BaseModel {
  static override tableName = 'users';
  static override hiddenFields = ['deletedAt'];

  id!: string;
  email!: string;
  name!: string;
  status!: UserStatus;
  /** Optimistic-locking version: 1 on insert, +1 on every write. */
  version!: number;
  createdAt!: Date;
  updatedAt!: Date;
  deletedAt!: Date | null;

  /**
   * The `User` of a `users` row as the database returns it (snake_case columns): the instance
   * `User.fromDatabaseJson(row)` makes for these columns, without objection's generic mapping,
   * which costs more than the rest of a read by id. Every read and write of the repository
   * selects or returns exactly these columns (`USER_COLUMNS`).
   */
  static fromRow(row: UserRow): User {
    const user = new User();
    user.id = row.id;
    user.email = row.email;
    user.name = row.name;
    user.status = row.status;
    user.version = row.version;
    user.createdAt = row.created_at;
    user.updatedAt = row.updated_at;
    user.deletedAt = row.deleted_at;
    return user;
  }

  static override jsonSchema: JSONSchema = {
    type: 'object',
    required: ['email', 'name'],
    additionalProperties: false,
    properties: {
      email: { type: 'string', format: 'email', maxLength: EMAIL_MAX_LENGTH },
      name: { type: 'string', minLength: NAME_MIN_LENGTH, maxLength: NAME_MAX_LENGTH },
      status: { type: 'string', enum: [...WRITABLE_USER_STATUSES] },
    },
  };
}
