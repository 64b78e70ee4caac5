import type { Knex } from 'knex';

/**
 * The `audit_log` table: one row per write through the service (create, update, delete,
 * import), inserted by the service in the transaction of the write itself, so that a change
 * never exists without its record nor a record without its change (docs/service.md, Audit
 * trail). Append-only, twice over:
 *
 * - Privileges: every role other than the owner loses UPDATE, DELETE and TRUNCATE on it,
 *   including the application role that the least-privilege script's default privileges
 *   granted them to at creation; it keeps SELECT and INSERT (and the identity sequence).
 * - A trigger refuses UPDATE, DELETE and TRUNCATE from anyone, the owner and superusers
 *   included (`42501`); retention is an operator's job: `alter table audit_log disable trigger
 *   user`, delete, enable again, as the owner.
 *
 * Columns: `actor` is the bearer token's `sub` (null when the write was not authenticated:
 * mode `none`, or a write outside HTTP); `fields` the names of the fields the write set, never
 * their values (they are personal data); `entity_id` is null for an import, which records
 * `row_count` instead; `occurred_at` is the transaction's start time (`now()`).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table audit_log (
      id          bigint generated always as identity primary key,
      occurred_at timestamptz not null default now(),
      actor       text,
      action      text        not null,
      entity      text        not null,
      entity_id   text,
      fields      text[]      not null default '{}',
      row_count   integer,
      request_id  text,
      constraint audit_log_action_check check (action in ('create', 'update', 'delete', 'import')),
      constraint audit_log_target_check check ((entity_id is null) = (action = 'import')),
      constraint audit_log_row_count_check check ((row_count is not null) = (action = 'import'))
    )`);
  await knex.raw('create index audit_log_entity_idx on audit_log (entity, entity_id, id)');
  await knex.raw(`
    create function audit_log_append_only() returns trigger language plpgsql as $$
    begin
      raise exception 'audit_log is append-only' using errcode = 'insufficient_privilege';
    end
    $$`);
  await knex.raw(`
    create trigger audit_log_no_update_delete before update or delete on audit_log
      for each row execute function audit_log_append_only()`);
  await knex.raw(`
    create trigger audit_log_no_truncate before truncate on audit_log
      for each statement execute function audit_log_append_only()`);
  // Default privileges (examples/least-privilege.sql) gave other roles UPDATE and DELETE at
  // creation; take them back from each (and from PUBLIC), leaving SELECT and INSERT.
  await knex.raw(`
    do $$
    declare grantee_name text;
    begin
      revoke update, delete, truncate on audit_log from public;
      for grantee_name in
        select distinct a.grantee::regrole::text
          from pg_class c, aclexplode(c.relacl) a
         where c.oid = 'audit_log'::regclass and a.grantee <> 0 and a.grantee <> c.relowner
           and a.privilege_type in ('UPDATE', 'DELETE', 'TRUNCATE')
      loop
        execute format('revoke update, delete, truncate on audit_log from %s', grantee_name);
      end loop;
    end
    $$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table audit_log');
  await knex.raw('drop function audit_log_append_only()');
}
