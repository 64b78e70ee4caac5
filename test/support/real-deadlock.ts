import type { Knex } from 'knex';
import type { TxManager } from '../../src/db/tx/tx-manager.js';

/**
 * Provokes a real deadlock (40P01): two transactions each lock one row of `locks`, wait until
 * both hold their first lock, then ask for the other's. The server picks a victim after
 * `deadlock_timeout` (50 ms, transaction-local); with retry on, the victim's callback runs again,
 * after the other transaction has ended: on a loaded machine the victim's retry could otherwise
 * take a row before the survivor (woken by the victim's rollback) gets it, and deadlock again.
 * Expects a table `locks (id int primary key, v int)`; resets it to rows 1 and 2 with v = 0.
 *
 * @returns each transaction's attempt count, in the order of `managers`.
 */
export async function runRealDeadlock(
  knex: Knex,
  managers: readonly [TxManager, TxManager],
): Promise<number[]> {
  await knex('locks').del();
  await knex('locks').insert([
    { id: 1, v: 0 },
    { id: 2, v: 0 },
  ]);
  let arrived = 0;
  let release: () => void = () => {};
  const bothHoldFirstLock = new Promise<void>((resolve) => (release = resolve));
  const ended: Array<Promise<unknown>> = [];
  const lockBoth = (
    tm: TxManager,
    first: number,
    second: number,
    other: () => Promise<unknown>,
  ): Promise<number> => {
    let attempt = 0;
    return tm.withTransaction(
      async (trx) => {
        attempt++;
        if (attempt > 1) await other().catch(() => undefined);
        await trx.raw("select set_config('deadlock_timeout', '50ms', true)");
        await trx('locks').where({ id: first }).increment('v', 1);
        if (attempt === 1) {
          if (++arrived === 2) release();
          await bothHoldFirstLock;
        }
        await trx('locks').where({ id: second }).increment('v', 1);
        return attempt;
      },
      { retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 } },
    );
  };
  ended.push(lockBoth(managers[0], 1, 2, () => ended[1]!));
  ended.push(lockBoth(managers[1], 2, 1, () => ended[0]!));
  return Promise.all(ended) as Promise<number[]>;
}
