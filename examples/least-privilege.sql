-- Least privilege on PostgreSQL 15+ (and older): a schema owner that runs the migrations, and
-- a DML-only role the service runs as. PostgreSQL 15 revoked CREATE on schema public from
-- PUBLIC, so the tables live in a schema of their own, owned by the migration role.
-- Run it once per database as a superuser (or a role with CREATEROLE that owns the database),
-- connected to the application's database; psql fills in the variables (DBNAME is psql's own):
--   psql -d app -v owner_role=app_owner -v owner_password=... -v app_role=app \
--        -v app_password=... -v schema=app -f examples/least-privilege.sql
-- test/integration/migrations/least-privilege.test.ts runs this file as it is.

create role :"owner_role" login password :'owner_password';
create role :"app_role" login password :'app_password';
grant connect on database :"DBNAME" to :"owner_role", :"app_role";

-- The schema the migrations create their tables in (knex_migrations included).
create schema :"schema" authorization :"owner_role";
alter role :"owner_role" in database :"DBNAME" set search_path = :"schema";
alter role :"app_role" in database :"DBNAME" set search_path = :"schema";

-- The service: it may use the schema, and read and write rows; it creates nothing.
grant usage on schema :"schema" to :"app_role";
grant select, insert, update, delete on all tables in schema :"schema" to :"app_role";
grant usage, select on all sequences in schema :"schema" to :"app_role";
alter default privileges for role :"owner_role" in schema :"schema"
  grant select, insert, update, delete on tables to :"app_role";
alter default privileges for role :"owner_role" in schema :"schema"
  grant usage, select on sequences to :"app_role";

-- Nobody else creates objects: not in public (the default before PostgreSQL 15), not even
-- temporary tables (the service needs none).
revoke create on schema public from public;
revoke temporary on database :"DBNAME" from public;
