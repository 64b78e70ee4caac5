import { sql as kyselySql } from 'kysely';
import { raw } from 'objection';
import type { Scenario } from './bench-harness.js';
import { USER_COLUMNS } from '../src/users/user-list.js';
import type { ProductSql } from './product-sql.js';
import type { StackClients } from './stack-clients.js';
import type { PathKey, StackKey } from './stacks-report.js';
import { accountOf, readModifyWrite, type RmwSql } from './tx-scenarios.js';

/** One stack's way on one path. */
export interface StackScenario {
  stack: StackKey;
  how: string;
  op: Scenario['op'];
}

/** The columns every user read returns: the repository's own list. */
const COLUMNS = USER_COLUMNS as ReadonlyArray<
  'id' | 'email' | 'name' | 'status' | 'version' | 'created_at' | 'updated_at' | 'deleted_at'
>;
/** The same, mutable, for objection's signatures. */
const COLUMN_LIST: string[] = [...COLUMNS];

/** What the per-operation paths need besides the clients. */
export interface ScenarioInputs {
  /** Users seeded 1..users: reads and updates pick among them. */
  users: number;
  product: ProductSql;
  rmw: RmwSql;
}

/** A unique email per call, per stack, per process (the insert path must not collide across rounds). */
let generators = 0;
function emails(stack: string): () => string {
  let n = 0;
  const run = `${process.pid}-${Date.now()}-${generators++}`;
  return () => `ins-${stack}-${run}-${n++}@example.com`;
}

/**
 * Each stack's way on each per-operation path, idiomatic for the library (its builder, its
 * transaction helper), the same statements where the library allows. Raw pg and pg-promise
 * send the repository's own SQL text (captured, see product-sql.ts).
 */
export function opScenarios(
  path: Exclude<PathKey, 'bulkInsert' | 'bulkCopy'>,
  c: StackClients,
  inp: ScenarioInputs,
): StackScenario[] {
  const userId = (i: number): number => (i % inp.users) + 1;
  const { product: ps, rmw } = inp;
  switch (path) {
    case 'read':
      return [
        {
          stack: 'pg',
          how: 'pool.query(sql, values)',
          op: (i) => c.rawPool.query(ps.read.text, ps.read.bind({ id: userId(i) })),
        },
        { stack: 'product', how: 'UserRepository.getById', op: (i) => c.repo.getById(String(userId(i))) },
        {
          stack: 'knex',
          how: 'builder .first()',
          op: (i) => c.knex('users').select(COLUMNS).where('id', userId(i)).whereNull('deleted_at').first(),
        },
        {
          stack: 'objection',
          how: 'Model.query().findById()',
          op: (i) => c.User.query().select(COLUMN_LIST).findById(userId(i)).whereNull('deleted_at'),
        },
        {
          stack: 'kysely',
          how: 'selectFrom().executeTakeFirst()',
          op: (i) =>
            c.kysely
              .selectFrom('users')
              .select(COLUMNS)
              .where('id', '=', String(userId(i)))
              .where('deleted_at', 'is', null)
              .limit(1)
              .executeTakeFirst(),
        },
        {
          stack: 'pgPromise',
          how: 'db.oneOrNone(sql, values)',
          op: (i) => c.pgpDb.oneOrNone(ps.read.text, ps.read.bind({ id: userId(i) })),
        },
        {
          stack: 'postgresJs',
          how: 'sql`...` (prepared by default)',
          op: (i) =>
            c.sql`select id, email, name, status, version, created_at, updated_at, deleted_at from users where id = ${userId(i)} and deleted_at is null limit 1`.execute(),
        },
        {
          stack: 'pgNamed',
          how: 'pool.query({ name, text, values })',
          op: (i) =>
            c.rawPool.query({
              name: 'bench_read',
              text: ps.read.text,
              values: ps.read.bind({ id: userId(i) }),
            }),
        },
      ];
    case 'insert': {
      const user = (next: () => string) => ({ email: next(), name: 'Bench Insert', status: 'active' });
      const row = (stack: StackKey): (() => { email: string; name: string; status: string }) => {
        const next = emails(stack);
        return () => user(next);
      };
      const [pgU, prU, knU, obU, kyU, ppU, pjU, pnU] = (
        ['pg', 'product', 'knex', 'objection', 'kysely', 'pgPromise', 'postgresJs', 'pgNamed'] as const
      ).map(row);
      return [
        {
          stack: 'pg',
          how: 'pool.query(sql, values)',
          op: () => c.rawPool.query(ps.insert.text, ps.insert.bind(pgU!())),
        },
        {
          stack: 'product',
          how: 'UserRepository.create',
          op: () => c.repo.create({ ...prU!(), status: 'active' }),
        },
        { stack: 'knex', how: 'insert(row, columns)', op: () => c.knex('users').insert(knU!(), COLUMNS) },
        {
          stack: 'objection',
          how: 'Model.query().insert().returning()',
          op: () => c.User.query().insert(obU!()).returning(COLUMN_LIST),
        },
        {
          stack: 'kysely',
          how: 'insertInto().returning()',
          op: () => c.kysely.insertInto('users').values(kyU!()).returning(COLUMNS).executeTakeFirstOrThrow(),
        },
        {
          stack: 'pgPromise',
          how: 'db.one(sql, values)',
          op: () => c.pgpDb.one(ps.insert.text, ps.insert.bind(ppU!())),
        },
        {
          stack: 'postgresJs',
          how: 'sql`insert ... returning`',
          op: () => {
            const u = pjU!();
            return c.sql`insert into users (email, name, status) values (${u.email}, ${u.name}, ${u.status}) returning id, email, name, status, version, created_at, updated_at, deleted_at`.execute();
          },
        },
        {
          stack: 'pgNamed',
          how: 'pool.query({ name, text, values })',
          op: () =>
            c.rawPool.query({ name: 'bench_insert', text: ps.insert.text, values: ps.insert.bind(pnU!()) }),
        },
      ];
    }
    case 'rmw':
      return [
        {
          stack: 'pg',
          how: 'client: BEGIN / SELECT FOR UPDATE / UPDATE / COMMIT',
          op: (i) =>
            rawTx(c, async (q) => {
              const id = accountOf(i);
              const { rows } = await q({ text: rmw.select, values: [id] });
              await q({ text: rmw.update, values: [(rows[0]!.balance as number) + 1, id] });
            }),
        },
        {
          stack: 'product',
          how: 'db.withTransaction + knex builder',
          op: (i) => c.db.withTransaction((trx) => readModifyWrite(trx, accountOf(i))),
        },
        {
          stack: 'knex',
          how: 'knex.transaction + builder',
          op: (i) => c.knex.transaction((trx) => readModifyWrite(trx, accountOf(i))),
        },
        {
          stack: 'objection',
          how: 'Model.transaction, findById().forUpdate(), patch()',
          op: (i) =>
            c.Account.transaction(async (trx) => {
              const id = accountOf(i);
              const a = await c.Account.query(trx)
                .select('id', 'balance')
                .findById(id)
                .forUpdate()
                .throwIfNotFound();
              await c.Account.query(trx)
                .findById(id)
                .patch({ balance: a.balance + 1 });
            }),
        },
        {
          stack: 'kysely',
          how: 'transaction().execute, forUpdate()',
          op: (i) =>
            c.kysely.transaction().execute(async (trx) => {
              const id = accountOf(i);
              const a = await trx
                .selectFrom('bench_accounts')
                .select(['id', 'balance'])
                .where('id', '=', id)
                .forUpdate()
                .executeTakeFirstOrThrow();
              await trx
                .updateTable('bench_accounts')
                .set({ balance: a.balance + 1 })
                .where('id', '=', id)
                .execute();
            }),
        },
        {
          stack: 'pgPromise',
          how: 'db.tx',
          op: (i) =>
            c.pgpDb.tx(async (t) => {
              const id = accountOf(i);
              const a = await t.one<{ balance: number }>(rmw.select, [id]);
              await t.none(rmw.update, [a.balance + 1, id]);
            }),
        },
        {
          stack: 'postgresJs',
          how: 'sql.begin',
          op: (i) =>
            c.sql.begin(async (sql) => {
              const id = accountOf(i);
              const [a] = await sql<
                Array<{ balance: number }>
              >`select id, balance from bench_accounts where id = ${id} for update`;
              await sql`update bench_accounts set balance = ${a!.balance + 1} where id = ${id}`;
            }),
        },
        {
          stack: 'pgNamed',
          how: 'client: BEGIN / named SELECT, UPDATE / COMMIT',
          op: (i) =>
            rawTx(c, async (q) => {
              const id = accountOf(i);
              const { rows } = await q({ name: 'bench_rmw_select', text: rmw.select, values: [id] });
              await q({
                name: 'bench_rmw_update',
                text: rmw.update,
                values: [(rows[0]!.balance as number) + 1, id],
              });
            }),
        },
      ];
    case 'rmwRepo': {
      const name = (i: number): string => `Bench Renamed ${i}`;
      const rawRepoTx = (named: boolean) => (i: number) =>
        rawTx(c, async (q) => {
          const id = userId(i);
          const { rows } = await q({
            name: named ? 'bench_repo_read' : undefined,
            text: ps.read.text,
            values: ps.read.bind({ id }),
          });
          const version = rows[0]!.version as number;
          const updated = await q({
            name: named ? 'bench_repo_update' : undefined,
            text: ps.update.text,
            values: ps.update.bind({ name: name(i), id, version }),
          });
          if (updated.rowCount !== 1) throw new Error(`raw pg: user ${id} not updated`);
        });
      return [
        {
          stack: 'pg',
          how: "client: BEGIN / the repository's SELECT, UPDATE / COMMIT",
          op: rawRepoTx(false),
        },
        {
          stack: 'product',
          how: 'db.withTransaction: repo.getById + repo.update (ambient tx)',
          op: (i) =>
            c.db.withTransaction(async () => {
              const id = String(userId(i));
              const user = await c.repo.getById(id);
              await c.repo.update(id, { name: name(i) }, user.version);
            }),
        },
        {
          stack: 'knex',
          how: 'knex.transaction + builder',
          op: (i) =>
            c.knex.transaction(async (trx) => {
              const id = userId(i);
              const user = (await trx('users')
                .select(COLUMNS)
                .where('id', id)
                .whereNull('deleted_at')
                .first()) as { version: number };
              const rows = await trx('users')
                .update({ name: name(i), updated_at: trx.fn.now(), version: trx.raw('version + 1') }, COLUMNS)
                .where('id', id)
                .where('version', user.version)
                .whereNull('deleted_at');
              if (rows.length !== 1) throw new Error(`knex: user ${id} not updated`);
            }),
        },
        {
          stack: 'objection',
          how: 'Model.transaction, findById(), patch().returning()',
          op: (i) =>
            c.User.transaction(async (trx) => {
              const id = userId(i);
              const user = await c.User.query(trx)
                .select(COLUMN_LIST)
                .findById(id)
                .whereNull('deleted_at')
                .throwIfNotFound();
              const rows = await c.User.query(trx)
                .patch({ name: name(i), updated_at: raw('now()'), version: raw('version + 1') })
                .where('id', id)
                .where('version', user.version)
                .whereNull('deleted_at')
                .returning(COLUMN_LIST);
              if (rows.length !== 1) throw new Error(`objection: user ${id} not updated`);
            }),
        },
        {
          stack: 'kysely',
          how: 'transaction().execute',
          op: (i) =>
            c.kysely.transaction().execute(async (trx) => {
              const id = String(userId(i));
              const user = await trx
                .selectFrom('users')
                .select(COLUMNS)
                .where('id', '=', id)
                .where('deleted_at', 'is', null)
                .limit(1)
                .executeTakeFirstOrThrow();
              await trx
                .updateTable('users')
                .set({
                  name: name(i),
                  updated_at: kyselySql<Date>`now()`,
                  version: kyselySql<number>`version + 1`,
                })
                .where('id', '=', id)
                .where('version', '=', user.version)
                .where('deleted_at', 'is', null)
                .returning(COLUMNS)
                .executeTakeFirstOrThrow();
            }),
        },
        {
          stack: 'pgPromise',
          how: "db.tx, the repository's SQL",
          op: (i) =>
            c.pgpDb.tx(async (t) => {
              const id = userId(i);
              const user = await t.one<{ version: number }>(ps.read.text, ps.read.bind({ id }));
              await t.one(ps.update.text, ps.update.bind({ name: name(i), id, version: user.version }));
            }),
        },
        {
          stack: 'postgresJs',
          how: 'sql.begin',
          op: (i) =>
            c.sql.begin(async (sql) => {
              const id = userId(i);
              const [user] = await sql<
                Array<{ version: number }>
              >`select id, email, name, status, version, created_at, updated_at, deleted_at from users where id = ${id} and deleted_at is null limit 1`;
              const rows =
                await sql`update users set name = ${name(i)}, updated_at = now(), version = version + 1 where id = ${id} and version = ${user!.version} and deleted_at is null returning id, email, name, status, version, created_at, updated_at, deleted_at`;
              if (rows.count !== 1) throw new Error(`postgres.js: user ${id} not updated`);
            }),
        },
        { stack: 'pgNamed', how: 'client: BEGIN / named SELECT, UPDATE / COMMIT', op: rawRepoTx(true) },
      ];
    }
  }
}

type RawQuery = (q: {
  name?: string;
  text: string;
  values: unknown[];
}) => Promise<{ rows: Array<Record<string, unknown>>; rowCount: number | null }>;

/** A transaction on a checked-out pg client: BEGIN, `body`, COMMIT (ROLLBACK on error). */
async function rawTx(c: StackClients, body: (q: RawQuery) => Promise<void>): Promise<void> {
  const client = await c.rawPool.connect();
  try {
    await client.query('begin');
    await body((q) => client.query(q));
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
