import type { Knex } from 'knex';
import { sqlStateOf } from '../errors/classify-error.js';
import { PreparedTransactionsDisabledError } from '../errors/errors.js';
import { SQLSTATE } from '../errors/sql-states.js';
import { GID_PREFIX, parseGid } from './gid.js';

/** One prepared transaction of ours on a participant, as `pg_prepared_xacts` shows it. */
export interface PreparedXact {
  gid: string;
  /** When it was prepared (the server's clock). */
  preparedAt: Date;
  /** How long it has been in doubt, ms (the server's clock). */
  ageMs: number;
}

/**
 * Checks that the participant's server accepts prepared transactions (`max_prepared_transactions`
 * defaults to 0, and PREPARE TRANSACTION then fails only at the end of the work).
 * @throws PreparedTransactionsDisabledError naming the participant.
 */
export async function assertPreparedTransactionsEnabled(participant: string, knex: Knex): Promise<void> {
  const res = await knex.raw<{ rows: Array<{ max: number }> }>(
    "select current_setting('max_prepared_transactions')::int as max",
  );
  if (!(res.rows[0]!.max > 0)) throw new PreparedTransactionsDisabledError(participant);
}

/**
 * The prepared transactions of ours in the participant's database (gids of other tools, and
 * those of other databases on the same server, are left out: COMMIT PREPARED works only from
 * the database the transaction was prepared in).
 */
export async function listPrepared(knex: Knex): Promise<PreparedXact[]> {
  const res = await knex.raw<{ rows: Array<{ gid: string; prepared: Date; age_ms: number }> }>(
    `select gid, prepared, (extract(epoch from (now() - prepared)) * 1000)::float8 as age_ms
       from pg_prepared_xacts
      where database = current_database() and starts_with(gid, ?)
      order by prepared`,
    [GID_PREFIX],
  );
  return res.rows
    .filter((r) => parseGid(r.gid) !== undefined)
    .map((r) => ({ gid: r.gid, preparedAt: r.prepared, ageMs: Math.max(0, r.age_ms) }));
}

/**
 * `COMMIT PREPARED` or `ROLLBACK PREPARED` of one gid of ours, from any session of the
 * participant's pool.
 * @returns false when the gid is not prepared (any more): finished by someone else (recovery
 *   in another process, the unit of work itself) or never prepared.
 * @throws the driver's error otherwise; Error for a gid that is not ours (never sent).
 */
export async function finishPrepared(
  knex: Knex,
  gid: string,
  action: 'commit' | 'rollback',
): Promise<boolean> {
  // The gid goes into the statement as a literal (no bind parameters there): only ours, whose
  // characters are [0-9a-z_], are ever sent.
  if (parseGid(gid) === undefined) throw new Error(`Not a two-phase commit gid of this layer: ${gid}`);
  try {
    await knex.raw(`${action === 'commit' ? 'COMMIT' : 'ROLLBACK'} PREPARED '${gid}'`);
    return true;
  } catch (err) {
    if (sqlStateOf(err) === SQLSTATE.undefinedObject) return false;
    throw err;
  }
}
