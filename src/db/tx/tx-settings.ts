import type { Knex } from 'knex';
import { escapeLiteral } from 'pg';

/** Validated `TxOptions.settings`: setting names and values as text. */
export type TxSettings = ReadonlyArray<readonly [string, string]>;

/**
 * `set_config(name, value, true)` (transaction-local) with both as literals escaped by pg's own
 * `escapeLiteral`: a value is never concatenated as given.
 */
export function setConfig(name: string, value: string): string {
  return `set_config(${escapeLiteral(name)}, ${escapeLiteral(value)}, true)`;
}

/**
 * Runs `fn` with `settings` applied to a transaction it joins (`trx`, already begun), and
 * restores the previous values afterwards, so that they last for the joining callback only:
 * one statement before (the old values, then the new ones, in select-list order) and one
 * after. When `fn` throws, the restore is attempted and its own failure ignored (the
 * transaction is then usually aborted, and its end discards every local setting anyway).
 * @throws the callback's error; the restoring statement's error when `fn` succeeded.
 */
export async function withJoinedSettings<T>(
  trx: Knex.Transaction,
  settings: TxSettings,
  fn: () => Promise<T>,
): Promise<T> {
  const before = settings.map(([name], i) => `current_setting(${escapeLiteral(name)}, true) as p${i}`);
  const apply = settings.map(([name, value]) => setConfig(name, value));
  const res = await trx.raw<{ rows: Array<Record<string, string | null>> }>(
    `select ${[...before, ...apply].join(', ')}`,
  );
  const prior = res.rows[0] ?? {};
  // A setting unknown before (NULL) is left as '' (PostgreSQL keeps a custom setting once defined).
  const restore = (): Promise<unknown> =>
    trx.raw(`select ${settings.map(([name], i) => setConfig(name, prior[`p${i}`] ?? '')).join(', ')}`);
  let result: T;
  try {
    result = await fn();
  } catch (err) {
    await restore().catch(() => {});
    throw err;
  }
  await restore();
  return result;
}
