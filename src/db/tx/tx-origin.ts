import type { InnerQuery } from './tx-connection.js';

/*
 * Where a transaction ran, so that a lost COMMIT is looked up only where its xid means that
 * transaction. Transaction ids are per server and per history: after a failover the promoted
 * node (a new timeline) reuses the ids the dead primary had handed out past what it
 * replicated, and a server that crash-restarts in place reuses those whose WAL never reached
 * disk. pg_xact_status there answers for some other transaction; a lookup that reaches another
 * server, another timeline or another run of the same server answers "unknown".
 *
 * What identifies it, all readable by a role without any privilege (checked on PostgreSQL 15
 * and 18; `pg_control_system()` is executable by PUBLIC, pg_stat_activity shows every
 * backend's pid and backend_type):
 * - the timeline: the first 8 hex digits of `pg_walfile_name(pg_current_wal_lsn())`, the
 *   timeline WAL is written on now (`pg_control_checkpoint().timeline_id` lags after a fast
 *   promotion until the next checkpoint). Per transaction, in the statement that reads the
 *   xid: a standby promoted under a live session changes it mid-session;
 * - the postmaster start time, per transaction in the same statement (no I/O);
 * - the system identifier and the checkpointer's pid: once per connection (they cannot change
 *   under a live session: a crash restart ends every session), cached on the connection. The
 *   checkpointer's pid changes when the server reinitializes after a backend crash, which
 *   leaves the postmaster and its start time as they were.
 */

/** Where a transaction ran: its server's run and the timeline, as `recordOrigin` read them. */
export interface TxOrigin {
  /** System identifier, checkpointer pid and postmaster start time, joined. */
  server: string;
  /** The timeline (8 hex digits); null when none could be read (a standby). */
  timeline: string | null;
}

const TIMELINE = 'left(pg_walfile_name(pg_current_wal_lsn()), 8)';
const STARTED = 'extract(epoch from pg_postmaster_start_time())::text';
const STABLE = `(select system_identifier::text from pg_control_system())
  || '/' || coalesce((select pid::text from pg_stat_activity where backend_type = 'checkpointer' limit 1), '-')`;

/** The connection's stable part (system identifier, checkpointer pid), once read. */
const stableParts = new WeakMap<object, string>();

/** The statement that reads the xid, with the timeline only when there is one (a standby has neither). */
function recordSql(withStable: boolean): string {
  return `select x.xid, case when x.xid is null then null else ${TIMELINE} end as timeline,
    ${STARTED} as started${withStable ? `, ${STABLE} as stable` : ''}
    from (select pg_current_xact_id_if_assigned()::text as xid) x`;
}
const RECORD_FIRST = recordSql(true);
const RECORD_NEXT = recordSql(false);

/** What `recordOrigin` read: the xid (null: none assigned) and, with one, where it ran. */
export interface RecordedOrigin {
  xid: string | null;
  origin: TxOrigin | undefined;
}

/**
 * Reads the transaction's xid and where it runs, in one statement on the transaction's own
 * connection (`connection` keys the per-connection cache; the first transaction on a connection
 * also reads its system identifier and checkpointer pid).
 * @throws the statement's error (25P02 when the transaction had already failed).
 */
export async function recordOrigin(inner: InnerQuery, connection: object): Promise<RecordedOrigin> {
  const known = stableParts.get(connection);
  const res = await inner(known === undefined ? RECORD_FIRST : RECORD_NEXT);
  const row = res.response?.rows?.[0] as
    { xid: string | null; timeline: string | null; started: string; stable?: string } | undefined;
  const stable = known ?? row?.stable;
  if (known === undefined && stable !== undefined) stableParts.set(connection, stable);
  const xid = row?.xid ?? null;
  if (xid === null || row === undefined || stable === undefined) return { xid, origin: undefined };
  return { xid, origin: { server: `${stable}@${row.started}`, timeline: row.timeline } };
}

/**
 * The lookup's statement: `pg_xact_status($1)` and where the lookup connection is, read as
 * `recordOrigin` reads it (the timeline null on a standby: it cannot be compared, so it never matches).
 */
export const LOOKUP_SQL = `select pg_xact_status($1::xid8) as status,
  ${STABLE} || '@' || ${STARTED} as server,
  case when pg_is_in_recovery() then null else ${TIMELINE} end as timeline`;

/**
 * Whether a lookup's row comes from where the transaction ran: same server run, same timeline.
 * False when either is unknown.
 */
export function sameOrigin(recorded: TxOrigin | undefined, row: Record<string, unknown>): boolean {
  if (recorded === undefined || recorded.timeline === null) return false;
  return row.server === recorded.server && row.timeline === recorded.timeline;
}
