import { randomUUID } from 'node:crypto';
import type { Database, TxOptions } from '../../src/db/database.js';
import { withPgClient } from '../../src/db/connection/with-pg-client.js';

/** Accounts 1..ACCOUNT_COUNT, each opened with INITIAL_BALANCE. */
const ACCOUNT_COUNT = 6;
const INITIAL_BALANCE = 1_000_000;

/** One transfer; `id` is made by the client, once, so every retry of it writes the same ledger row. */
export interface Transfer {
  id: string;
  fromId: number;
  toId: number;
  amount: number;
}

/** What one `runTransfer` call saw of its own callback: how often it ran and the statement it last began. */
export interface TransferTrace {
  attempts: number;
  step: string;
}

/** How `runTransfer` shapes its transaction, beyond the default four statements. */
export interface TransferShape {
  /**
   * `false` skips the row locks taken in id order, so two transfers between the same pair of
   * accounts in opposite directions can deadlock (40P01). Default true.
   */
  lockInOrder?: boolean;
  /** Holds the connection this long (pg_sleep) after the writes, ms; default 0. */
  holdMs?: number;
}

/** The ledger as it is on the server after a load. */
export interface LedgerAudit {
  /** Ids of every transfer in the ledger. */
  ids: Set<string>;
  /** Accounts whose balance is not INITIAL_BALANCE plus what the ledger says came in minus went out. */
  mismatches: Array<{ id: number; balance: number; expected: number }>;
  /** Sum of all balances now, and what it was when the accounts were opened (money is never made or lost). */
  total: number;
  openingTotal: number;
}

/**
 * Creates `accounts (id, balance)` with ACCOUNT_COUNT rows of INITIAL_BALANCE, and
 * `ledger (id uuid primary key, from_id, to_id, amount)`, in the database at `url`.
 */
export async function createTransferLedger(url: string): Promise<void> {
  await withPgClient(url, async (client) => {
    await client.query('create table accounts (id int primary key, balance int not null)');
    await client.query(
      `create table ledger (
         id uuid primary key,
         from_id int not null references accounts,
         to_id int not null references accounts,
         amount int not null check (amount > 0))`,
    );
    await client.query('insert into accounts select g, $1 from generate_series(1, $2) as g', [
      INITIAL_BALANCE,
      ACCOUNT_COUNT,
    ]);
  });
}

/** A random transfer of 1..100 between two different accounts of 1..`accounts` (at most ACCOUNT_COUNT), with a new id. */
export function randomTransfer(accounts = ACCOUNT_COUNT): Transfer {
  const n = Math.min(Math.max(2, accounts), ACCOUNT_COUNT);
  const fromId = 1 + Math.floor(Math.random() * n);
  const toId = 1 + ((fromId + Math.floor(Math.random() * (n - 1))) % n);
  return { id: randomUUID(), fromId, toId, amount: 1 + Math.floor(Math.random() * 100) };
}

/**
 * Runs one transfer through `db.withTransaction` as four statements, so that a backend can
 * die between any two of them: lock both rows (in id order: no deadlock between transfers),
 * debit, credit, write the ledger row. `trace` is updated as the callback runs; `shape`
 * can drop the ordered locks or hold the connection longer.
 */
export async function runTransfer(
  db: Database,
  t: Transfer,
  opts: TxOptions,
  trace: TransferTrace = { attempts: 0, step: '' },
  { lockInOrder = true, holdMs = 0 }: TransferShape = {},
): Promise<void> {
  await db.withTransaction(async (trx) => {
    trace.attempts++;
    trace.step = 'select for update';
    if (lockInOrder)
      await trx('accounts').select('id').whereIn('id', [t.fromId, t.toId]).orderBy('id').forUpdate();
    trace.step = 'debit';
    await trx('accounts').where({ id: t.fromId }).decrement('balance', t.amount);
    trace.step = 'credit';
    await trx('accounts').where({ id: t.toId }).increment('balance', t.amount);
    trace.step = 'ledger insert';
    await trx('ledger').insert({ id: t.id, from_id: t.fromId, to_id: t.toId, amount: t.amount });
    if (holdMs > 0) {
      trace.step = 'hold';
      await trx.raw('select pg_sleep(?)', [holdMs / 1000]);
    }
    trace.step = 'commit';
  }, opts);
}

/** Reads the ledger and checks every balance against it (the money invariant), on a connection of its own. */
export async function auditLedger(url: string): Promise<LedgerAudit> {
  return withPgClient(url, async (client) => {
    const ledger = await client.query<{ id: string }>('select id from ledger');
    const { rows } = await client.query<{ id: number; balance: number; net: number }>(
      `select a.id, a.balance,
              (select coalesce(sum(amount), 0) from ledger where to_id = a.id)::int
            - (select coalesce(sum(amount), 0) from ledger where from_id = a.id)::int as net
         from accounts a order by a.id`,
    );
    return {
      ids: new Set(ledger.rows.map((r) => r.id)),
      mismatches: rows
        .filter((r) => r.balance !== INITIAL_BALANCE + r.net)
        .map((r) => ({ id: r.id, balance: r.balance, expected: INITIAL_BALANCE + r.net })),
      total: rows.reduce((sum, r) => sum + r.balance, 0),
      openingTotal: INITIAL_BALANCE * ACCOUNT_COUNT,
    };
  });
}
