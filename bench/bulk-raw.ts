import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { NewUser } from '../src/users/user-input.js';

/** Rows per multi-row INSERT in the raw pg INSERT scenarios (insertMany's default chunk is the same). */
export const BULK_INSERT_BATCH = 1000;

/** The VALUES list of a multi-row INSERT of `count` users, 3 bind values each: `($1, $2, $3), ($4, ...`. */
export function valuesList(count: number): string {
  return Array.from({ length: count }, (_, r) => `($${r * 3 + 1}, $${r * 3 + 2}, $${r * 3 + 3})`).join(', ');
}

/**
 * Raw pg, one transaction, multi-row INSERTs of BULK_INSERT_BATCH rows (3 bind values each).
 * With `named`, each statement is a named prepared statement (one name per batch size).
 */
export async function rawInsert(
  client: pg.ClientBase,
  users: Iterable<NewUser>,
  opts: { named?: boolean } = {},
): Promise<number> {
  await client.query('begin');
  try {
    let batch: unknown[] = [];
    let n = 0;
    const flush = async (): Promise<void> => {
      const count = batch.length / 3;
      const text = `insert into users (email, name, status) values ${valuesList(count)}`;
      await client.query(
        opts.named ? { name: `bench_bulk_insert_${count}`, text, values: batch } : { text, values: batch },
      );
      n += count;
      batch = [];
    };
    for (const u of users) {
      batch.push(u.email, u.name, u.status);
      if (batch.length === BULK_INSERT_BATCH * 3) await flush();
    }
    if (batch.length > 0) await flush();
    await client.query('commit');
    return n;
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  }
}

/** Raw pg COPY FROM STDIN (pg-copy-streams), 64 KiB writes with backpressure (the bench's rows need no escaping). */
export async function rawCopy(client: pg.ClientBase, users: Iterable<NewUser>): Promise<number> {
  const stream = client.query(copyFrom('COPY users (email, name, status) FROM STDIN'));
  let chunk = '';
  for (const u of users) {
    chunk += `${u.email}\t${u.name}\t${u.status}\n`;
    if (chunk.length >= 64 * 1024) {
      if (!stream.write(chunk)) await once(stream, 'drain');
      chunk = '';
    }
  }
  stream.end(chunk);
  await finished(stream);
  return stream.rowCount;
}
