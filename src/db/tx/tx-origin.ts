import type { InnerQuery } from './tx-connection.js';

/*
 * Where a transaction ran, so that a lost COMMIT is looked up only where its xid still means
 * that transaction. Transaction ids are per server history: a promoted standby that had not
 * received all of the dead primary's WAL hands out again the xids it never saw, and so does a
 * server that crash-restarts in place for xids whose WAL never reached disk. pg_xact_status
 * there answers for some other transaction (a wrong "committed").
 *
 * An answer is trusted (`trustworthy`) when the lookup runs on
 * - the very server run the transaction ran on (same system identifier, checkpointer pid and
 *   postmaster start time, same timeline); or
 * - a primary of the same system on the same timeline or the next one (a restart in place, a
 *   promoted standby) that replayed WAL at least up to the position recorded before COMMIT
 *   (`pg_last_wal_replay_lsn()`, static after recovery ends). That WAL holds a record of the
 *   transaction's xid, so the server's next xid was past it when it began taking writes: the
 *   xid was never handed out again there, and its status is this transaction's, in the history
 *   that server serves (committed: its commit was replayed; aborted: it never will be).
 * Anything else (another system, a standby, a timeline further on, a server that replayed less)
 * answers "unknown". It assumes timelines are not forked by hand (two nodes promoted to the same
 * timeline): a manager such as Patroni ensures that.
 *
 * Read without any privilege (PostgreSQL 15 and 18: `pg_control_system()` and
 * `pg_last_wal_replay_lsn()` are executable by PUBLIC, pg_stat_activity shows every backend's
 * pid and type):
 * - per transaction, in the statement that reads the xid (no I/O): the timeline, the first 8
 *   hex digits of `pg_walfile_name(pg_current_wal_lsn())` (`pg_control_checkpoint()` lags after
 *   a fast promotion until the next checkpoint; a standby promoted under a live session changes
 *   it mid-session), the postmaster start time and `pg_current_wal_insert_lsn()`;
 * - once per connection, cached on it: the system identifier and the checkpointer's pid (both
 *   fixed for a session's life; the pid changes when the server reinitializes after a backend
 *   crash, which leaves the postmaster and its start time as they were).
 */

/** Where a transaction ran, as `recordOrigin` read it. */
export interface TxOrigin {
  /** The system identifier. */
  system: string;
  /** The server's run: checkpointer pid and postmaster start time. */
  run: string;
  /** The timeline (8 hex digits). */
  timeline: string;
  /**
   * The WAL insert position before COMMIT: the transaction's first record is before it.
   * Undefined when read with BEGIN (no record of the xid exists yet): then only the same
   * server run is trusted.
   */
  lsn: string | undefined;
}

const TIMELINE = 'left(pg_walfile_name(pg_current_wal_lsn()), 8)';
const STARTED = 'extract(epoch from pg_postmaster_start_time())::text';
const SYSTEM = '(select system_identifier::text from pg_control_system())';
const CHECKPOINTER =
  "coalesce((select pid::text from pg_stat_activity where backend_type = 'checkpointer' limit 1), '-')";

/** The connection's fixed part (system identifier, checkpointer pid), once read. */
const fixedParts = new WeakMap<object, { system: string; checkpointer: string }>();

/** The statement that reads the xid, and where it runs only when there is one (a standby has neither). */
function recordSql(withFixed: boolean): string {
  return `select x.xid, case when x.xid is null then null else ${TIMELINE} end as timeline,
    case when x.xid is null then null else pg_current_wal_insert_lsn()::text end as lsn,
    ${STARTED} as started${withFixed ? `, ${SYSTEM} as system, ${CHECKPOINTER} as checkpointer` : ''}
    from (select pg_current_xact_id_if_assigned()::text as xid) x`;
}
const RECORD_FIRST = recordSql(true);
const RECORD_NEXT = recordSql(false);

/** BEGIN's select-list items for where the transaction runs (the fixed part on a connection's first transaction). */
export function beginOriginColumns(connection: object): string {
  const fixed = fixedParts.has(connection) ? '' : `, ${SYSTEM} as system, ${CHECKPOINTER} as checkpointer`;
  return `${TIMELINE} as timeline, ${STARTED} as started${fixed}`;
}

/** Where the transaction runs, from the columns of `beginOriginColumns` (undefined when incomplete). */
export function originAtBegin(row: Record<string, unknown>, connection: object): TxOrigin | undefined {
  const fixed = fixedOf(row, connection);
  if (fixed === undefined || typeof row.timeline !== 'string' || typeof row.started !== 'string')
    return undefined;
  return {
    system: fixed.system,
    run: `${fixed.checkpointer}@${row.started}`,
    timeline: row.timeline,
    lsn: undefined,
  };
}

/** The connection's cached fixed part, or the one `row` carries (then cached). */
function fixedOf(
  row: Record<string, unknown>,
  connection: object,
): { system: string; checkpointer: string } | undefined {
  let fixed = fixedParts.get(connection);
  if (fixed === undefined && typeof row.system === 'string' && typeof row.checkpointer === 'string') {
    fixed = { system: row.system, checkpointer: row.checkpointer };
    fixedParts.set(connection, fixed);
  }
  return fixed;
}

/** What `recordOrigin` read: the xid (null: none assigned) and, with one, where it ran. */
export interface RecordedOrigin {
  xid: string | null;
  origin: TxOrigin | undefined;
}

type RecordRow = {
  xid: string | null;
  timeline: string | null;
  lsn: string | null;
  started: string;
  system?: string;
  checkpointer?: string;
};

/**
 * Reads the transaction's xid and where it runs, in one statement on the transaction's own
 * connection (`connection` keys the per-connection cache: the first transaction on a connection
 * also reads its system identifier and checkpointer pid).
 * @throws the statement's error (25P02 when the transaction had already failed).
 */
export async function recordOrigin(inner: InnerQuery, connection: object): Promise<RecordedOrigin> {
  let fixed = fixedParts.get(connection);
  const res = await inner(fixed === undefined ? RECORD_FIRST : RECORD_NEXT);
  const row = res.response?.rows?.[0] as RecordRow | undefined;
  if (fixed === undefined && row?.system !== undefined && row.checkpointer !== undefined) {
    fixed = { system: row.system, checkpointer: row.checkpointer };
    fixedParts.set(connection, fixed);
  }
  const xid = row?.xid ?? null;
  if (xid === null || !row?.timeline || !row.lsn || fixed === undefined) return { xid, origin: undefined };
  return {
    xid,
    origin: {
      system: fixed.system,
      run: `${fixed.checkpointer}@${row.started}`,
      timeline: row.timeline,
      lsn: row.lsn,
    },
  };
}

/**
 * The lookup's statement ($1 the xid, $2 the recorded WAL position): `pg_xact_status` and where
 * the lookup connection is, read as `recordOrigin` reads it, and whether this server replayed
 * WAL up to $2 (null when it never recovered, or when it is a standby: no timeline then).
 */
export const LOOKUP_SQL = `select pg_xact_status($1::xid8) as status, ${SYSTEM} as system,
  ${CHECKPOINTER} || '@' || ${STARTED} as run,
  case when pg_is_in_recovery() then null else ${TIMELINE} end as timeline,
  pg_last_wal_replay_lsn() >= $2::pg_lsn as replayed`;

/** Whether a lookup's row tells the truth about the recorded transaction (see the module comment). */
export function trustworthy(recorded: TxOrigin | undefined, row: Record<string, unknown>): boolean {
  if (recorded === undefined || typeof row.timeline !== 'string' || row.system !== recorded.system)
    return false;
  if (row.run === recorded.run && row.timeline === recorded.timeline) return true;
  const step = Number.parseInt(row.timeline, 16) - Number.parseInt(recorded.timeline, 16);
  return recorded.lsn !== undefined && (step === 0 || step === 1) && row.replayed === true;
}
