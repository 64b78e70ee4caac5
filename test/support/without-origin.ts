/**
 * A statement's text without the columns that read where the transaction runs (tx-origin.ts):
 * BEGIN's `select pg_current_xact_id()::text as xid, <timeline>, <server run>[, <system>]` becomes
 * `select pg_current_xact_id()::text as xid`. Those columns vary (the system identifier is read
 * once per connection), so tests that compare the statements sent compare them without.
 */
export function withoutOrigin(sql: string): string {
  return sql.replace(/ as xid, left\(pg_walfile_name\(.*? as started(, .*? as checkpointer)?/s, ' as xid');
}
