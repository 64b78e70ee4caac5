import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import type { Database } from '../database.js';
import { sqlStateOf } from '../errors/classify-error.js';
import { TxOptionsError } from '../errors/errors.js';
import { SQLSTATE } from '../errors/sql-states.js';

/** Default name of the coordinator's table of decisions. */
const DEFAULT_DECISION_TABLE = 'pgdl_two_phase_decisions';

const TABLE_NAME = /^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$/;

/** What `pg_xact_status` says of a coordinator transaction; null: too old to know (or not of this cluster). */
export type DecisionStatus = 'committed' | 'aborted' | 'in progress' | null;

/** One committed decision record: the unit of work committed (presumed abort: no record, no commit). */
export interface DecisionRecord {
  xid: string;
  /** Participant names, in gid index order. */
  participants: string[];
}

/** The coordinator transaction of one unit of work: its record is written, its COMMIT is the decision. */
export interface OpenDecision {
  trx: Knex.Transaction;
  /** The coordinator transaction's `xid8` (decimal), carried by every gid of the unit of work. */
  xid: string;
}

/**
 * The coordinator's durable record of two-phase decisions, in a table of its own. The record of
 * a unit of work is inserted at its start, inside a coordinator transaction kept open (the
 * insert also assigns that transaction's xid, which every gid carries); COMMIT of that
 * transaction is the commit decision, atomically. So a record is visible exactly when the unit
 * of work was decided commit, and while there is none, `pg_xact_status(xid)` tells a coordinator
 * still deciding (in progress) from one that died or gave up (aborted).
 *
 * The table is created on first use when missing, not by a migration: the coordinator may be
 * any database (not one this project migrates), and a service without two-phase commit should
 * not carry the table. Existence is checked first, so a role without CREATE works once the
 * table exists (docs/scale-out.md has its DDL).
 */
export class DecisionLog {
  readonly #db: Database;
  readonly #table: string;

  /** @throws TxOptionsError when `table` is not a plain (optionally schema-qualified) lower-case name. */
  constructor(db: Database, table = DEFAULT_DECISION_TABLE) {
    if (!TABLE_NAME.test(table))
      throw new TxOptionsError(
        `decisionTable must be a lower-case SQL name, optionally schema-qualified (got "${table}").`,
      );
    this.#db = db;
    this.#table = table;
  }

  get table(): string {
    return this.#table;
  }

  /**
   * Creates the table unless it exists, and returns the coordinator's tag: 8 hex digits of a
   * hash of the cluster's system identifier and the database's oid (gids name their coordinator,
   * so that two coordinators sharing a participant never resolve each other's transactions).
   */
  async ensure(): Promise<string> {
    const knex = this.#db.driver();
    const found = await knex.raw<{ rows: Array<{ present: boolean }> }>(
      'select to_regclass(?) is not null as present',
      [this.#table],
    );
    if (!found.rows[0]!.present) {
      try {
        await knex.raw(
          `create table if not exists ${this.#table} (
             xid xid8 primary key,
             participants text[] not null,
             started_at timestamptz not null default now()
           )`,
        );
      } catch (err) {
        // Two processes creating it at once: the loser fails on the catalog's unique index.
        const sqlState = sqlStateOf(err);
        if (sqlState !== SQLSTATE.uniqueViolation && sqlState !== SQLSTATE.duplicateTable) throw err;
      }
    }
    const id = await knex.raw<{ rows: Array<{ system: string; database: string }> }>(
      `select (select system_identifier from pg_control_system())::text as system,
              (select oid from pg_database where datname = current_database())::text as database`,
    );
    const { system, database } = id.rows[0]!;
    return createHash('sha256').update(`${system}/${database}`).digest('hex').slice(0, 8);
  }

  /**
   * Begins the coordinator transaction of a unit of work and inserts its record (not visible
   * to anyone until the decision commits it). The records of `finished` units of work (every
   * participant committed) are deleted by the same statement, so that removing them costs no
   * round trip of its own; they are gone only if this transaction commits.
   * @throws what `beginTx` or the insert throws (the transaction is rolled back then).
   */
  async open(participants: readonly string[], finished: readonly string[] = []): Promise<OpenDecision> {
    const trx = await this.#db.beginTx();
    try {
      const res = await trx.raw<{ rows: Array<{ xid: string }> }>(
        `with finished as (delete from ${this.#table} where xid = any(?::xid8[]))
         insert into ${this.#table} (xid, participants) values (pg_current_xact_id(), ?) returning xid::text as xid`,
        [[...finished], [...participants]],
      );
      return { trx, xid: res.rows[0]!.xid };
    } catch (err) {
      await trx.rollback();
      throw err;
    }
  }

  /** Every committed record. */
  async records(): Promise<Map<string, DecisionRecord>> {
    const res = await this.#db
      .driver()
      .raw<{ rows: DecisionRecord[] }>(`select xid::text as xid, participants from ${this.#table}`);
    return new Map(res.rows.map((r) => [r.xid, r]));
  }

  /** What the coordinator's server says of each transaction (committed, aborted, in progress, or null). */
  async statusOf(xids: readonly string[]): Promise<Map<string, DecisionStatus>> {
    if (xids.length === 0) return new Map();
    const res = await this.#db
      .driver()
      .raw<{ rows: Array<{ xid: string; status: DecisionStatus }> }>(
        'select x as xid, pg_xact_status(x::xid8) as status from unnest(?::text[]) as x',
        [[...xids]],
      );
    return new Map(res.rows.map((r) => [r.xid, r.status]));
  }

  /** Deletes the records of units of work that are finished everywhere. */
  async remove(xids: readonly string[]): Promise<void> {
    if (xids.length === 0) return;
    await this.#db.driver().raw(`delete from ${this.#table} where xid = any(?::xid8[])`, [[...xids]]);
  }
}
