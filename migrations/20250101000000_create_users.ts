import type { Knex } from 'knex';

/**
 * The `users` table. The CHECK constraints repeat the model's jsonSchema on purpose: bulk
 * loads (COPY) and hand-written SQL bypass the model, and the database is the last line.
 *
 * Indexes, each proven by an EXPLAIN test (test/integration/users/user-indexes.test.ts):
 * - `users_email_lower_key`: unique on lower(email); emails are unique case-insensitively and
 *   `findByEmail` looks up lower(email).
 * - `users_status_id_idx`: `list({ status })` walks (status, id) in keyset order.
 * - the primary key serves `getById` and the unfiltered `list` (ordered by id).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table users (
      id          bigint generated always as identity primary key,
      email       text        not null,
      name        text        not null,
      status      text        not null default 'active',
      version     integer     not null default 1,
      created_at  timestamptz not null default now(),
      updated_at  timestamptz not null default now(),
      deleted_at  timestamptz,
      constraint users_status_check check (status in ('active', 'suspended', 'deleted')),
      constraint users_email_length_check check (char_length(email) between 3 and 254),
      constraint users_name_length_check check (char_length(name) between 1 and 200),
      constraint users_version_check check (version >= 1),
      -- soft delete: the status and the timestamp say the same thing, always
      constraint users_deleted_check check ((status = 'deleted') = (deleted_at is not null))
    )`);
  await knex.raw('create unique index users_email_lower_key on users (lower(email))');
  await knex.raw('create index users_status_id_idx on users (status, id)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table users');
}
