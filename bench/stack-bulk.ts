import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { benchUsers } from './bench-setup.js';
import { BULK_INSERT_BATCH, rawCopy, rawInsert } from './bulk-raw.js';
import type { StackClients } from './stack-clients.js';
import type { StackKey } from './stacks-report.js';
import type { NewUser } from '../src/users/user-input.js';

/** One stack's bulk load of `rows` users into the emptied `users` table; resolves to the rows written. */
export interface BulkLoad {
  stack: StackKey;
  how: string;
  load: (tag: string) => Promise<number>;
}

type Row = { email: string; name: string; status: string };

/** `users` in arrays of BULK_INSERT_BATCH, made as they are consumed (as the raw pg INSERT does). */
function* batches(users: Iterable<NewUser>): Generator<Row[]> {
  let batch: Row[] = [];
  for (const u of users) {
    batch.push({ email: u.email, name: u.name, status: u.status ?? 'active' });
    if (batch.length === BULK_INSERT_BATCH) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/**
 * Multi-row INSERTs of BULK_INSERT_BATCH rows in one transaction through every stack (each
 * with its own bulk helper where it has one: pg-promise's `helpers.insert`, postgres.js's
 * `sql(rows)`), and `UserRepository.insertMany`. The rows are made inside the timed region
 * everywhere; insertMany takes an array, so it gets `Array.from` of the same generator.
 */
export function bulkInsertLoads(c: StackClients, rows: number): BulkLoad[] {
  const users = (tag: string) => benchUsers(rows, tag);
  const columns = new c.pgp.helpers.ColumnSet(['email', 'name', 'status'], { table: 'users' });
  const raw = (named: boolean) => async (tag: string) => {
    const client = await c.rawPool.connect();
    try {
      return await rawInsert(client, users(tag), { named });
    } finally {
      client.release();
    }
  };
  const count = async (each: (batch: Row[]) => PromiseLike<unknown>, tag: string): Promise<number> => {
    let n = 0;
    for (const batch of batches(users(tag))) {
      await each(batch);
      n += batch.length;
    }
    return n;
  };
  return [
    {
      stack: 'pg',
      how: `client: BEGIN / INSERT of ${BULK_INSERT_BATCH} rows ... / COMMIT`,
      load: raw(false),
    },
    {
      stack: 'product',
      how: 'UserRepository.insertMany',
      load: (tag) => c.repo.insertMany(Array.from(users(tag))),
    },
    {
      stack: 'knex',
      how: 'knex.transaction, insert(batch)',
      load: (tag) => c.knex.transaction((trx) => count((b) => trx('users').insert(b), tag)),
    },
    {
      stack: 'objection',
      how: 'Model.transaction, query().insert(batch)',
      load: (tag) => c.User.transaction((trx) => count((b) => c.User.query(trx).insert(b), tag)),
    },
    {
      stack: 'kysely',
      how: 'transaction(), insertInto().values(batch)',
      load: (tag) =>
        c.kysely
          .transaction()
          .execute((trx) => count((b) => trx.insertInto('users').values(b).execute(), tag)),
    },
    {
      stack: 'pgPromise',
      how: 'db.tx, helpers.insert(batch, columnSet)',
      load: (tag) => c.pgpDb.tx((t) => count((b) => t.none(c.pgp.helpers.insert(b, columns)), tag)),
    },
    {
      stack: 'postgresJs',
      how: 'sql.begin, sql`insert into users ${sql(batch)}`',
      load: (tag) =>
        c.sql.begin((sql) =>
          count((b) => sql`insert into users ${sql(b, 'email', 'name', 'status')}`.execute(), tag),
        ),
    },
    { stack: 'pgNamed', how: 'the same, named statements', load: raw(true) },
  ];
}

/** COPY FROM STDIN where the stack has it: raw pg (pg-copy-streams), postgres.js's `writable()`, and `UserRepository.copyIn`. */
export function bulkCopyLoads(c: StackClients, rows: number): BulkLoad[] {
  const users = (tag: string) => benchUsers(rows, tag);
  return [
    {
      stack: 'pg',
      how: 'pg-copy-streams, 64 KiB writes',
      load: async (tag) => {
        const client = await c.rawPool.connect();
        try {
          return await rawCopy(client, users(tag));
        } finally {
          client.release();
        }
      },
    },
    {
      stack: 'product',
      how: 'UserRepository.copyIn (validated rows)',
      load: (tag) => c.repo.copyIn(users(tag)),
    },
    {
      stack: 'postgresJs',
      how: 'sql`copy ... from stdin`.writable(), 64 KiB writes',
      load: async (tag) => {
        const stream = await c.sql`copy users (email, name, status) from stdin`.writable();
        let chunk = '';
        let n = 0;
        for (const u of users(tag)) {
          chunk += `${u.email}\t${u.name}\t${u.status}\n`;
          n++;
          if (chunk.length >= 64 * 1024) {
            if (!stream.write(chunk)) await once(stream, 'drain');
            chunk = '';
          }
        }
        stream.end(chunk);
        await finished(stream);
        return n;
      },
    },
  ];
}
