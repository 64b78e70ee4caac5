import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import knexFactory from 'knex';
import { withPgClient } from '../../../src/db/connection/with-pg-client.js';
import { UserRepository } from '../../../src/users/user-repository.js';
import { useUserRepository } from '../../support/user-fixture.js';

interface SentQuery {
  sql: string;
  bindings: unknown[];
}

/** Runs `call` and returns the statements the repository sent (knex's 'query' event). */
async function statementsOf(knex: import('knex').Knex, call: () => Promise<unknown>): Promise<SentQuery[]> {
  const sent: SentQuery[] = [];
  const listener = (q: { sql: string; bindings?: unknown[] }) =>
    sent.push({ sql: q.sql, bindings: q.bindings ?? [] });
  knex.on('query', listener);
  try {
    await call();
  } finally {
    knex.off('query', listener);
  }
  return sent;
}

/** Every index named in an EXPLAIN (FORMAT JSON) plan. */
function indexesIn(plan: unknown): string[] {
  const found: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key === 'Index Name' && typeof value === 'string') found.push(value);
        else walk(value);
      }
    }
  };
  walk(plan);
  return found;
}

describe('UserRepository query plans', () => {
  const fx = useUserRepository();
  /**
   * The plan of the one statement `call` sends. The table is tiny, so a sequential scan
   * would win on cost; `enable_seqscan = off` (transaction-local) makes the planner show
   * whether an index *can* serve the query, which is what these tests are about.
   */
  async function planOf(call: () => Promise<unknown>): Promise<{ sql: string; indexes: string[] }> {
    const [stmt, ...rest] = await statementsOf(fx.knex(), call);
    expect(rest, 'one statement').to.have.length(0);
    if (!stmt) throw new Error('no statement sent');
    // Ending the client ends its transaction too: nothing of the setting outlives the plan.
    return withPgClient(fx.testDb().url, async (client) => {
      await client.query('begin');
      await client.query('set local enable_seqscan = off');
      const { rows } = await client.query<{ 'QUERY PLAN': unknown }>(
        `explain (format json) ${stmt.sql}`,
        stmt.bindings,
      );
      return { sql: stmt.sql, indexes: indexesIn(rows[0]?.['QUERY PLAN']) };
    });
  }

  it('findByEmail uses the unique index on lower(email)', async () => {
    const { indexes } = await planOf(() => fx.repo().findByEmail('Ada@Example.com'));
    expect(indexes).to.deep.equal(['users_email_lower_key']);
  });

  it('findById uses the primary key', async () => {
    const { indexes } = await planOf(() => fx.repo().findById('1'));
    expect(indexes).to.deep.equal(['users_pkey']);
  });

  it('list with a status filter walks the (status, id) index, also after a cursor', async () => {
    const first = await fx.repo().list({ status: 'active', limit: 1 });
    expect((await planOf(() => fx.repo().list({ status: 'active', limit: 1 }))).indexes).to.deep.equal([
      'users_status_id_idx',
    ]);
    const next = await planOf(() =>
      fx.repo().list({ status: 'active', limit: 1, cursor: first.nextCursor ?? '' }),
    );
    expect(next.indexes).to.deep.equal(['users_status_id_idx']);
  });

  it('list without a filter walks the primary key in id order', async () => {
    const { indexes } = await planOf(() => fx.repo().list({ order: 'desc' }));
    expect(indexes).to.deep.equal(['users_pkey']);
  });

  it('count with a status filter uses the (status, id) index', async () => {
    const { indexes } = await planOf(() => fx.repo().count({ status: 'suspended' }));
    expect(indexes).to.deep.equal(['users_status_id_idx']);
  });

  describe('named prepared statements', () => {
    /** Names in pg_prepared_statements of the connection `trx` runs on. */
    async function preparedOn(trx: import('knex').Knex.Transaction): Promise<string[]> {
      const result = await trx.raw<{ rows: Array<{ name: string }> }>(
        'select name from pg_prepared_statements',
      );
      return result.rows.map((r) => r.name).sort();
    }

    /** `fn`'s result on a transaction of a knex of its own: a fresh connection on which nothing was prepared yet. */
    async function onFreshConnection<T>(
      fn: (trx: import('knex').Knex.Transaction, repo: UserRepository) => Promise<T>,
      opts: { preparedStatements?: boolean } = {},
    ): Promise<T> {
      const knex = knexFactory({ client: 'pg', connection: fx.testDb().url, pool: { min: 0, max: 1 } });
      try {
        const repo = new UserRepository(knex, opts);
        return await knex.transaction((trx) => fn(trx, repo));
      } finally {
        await knex.destroy();
      }
    }

    it('runs findById and findByEmail as named statements, prepared once per connection', async () => {
      const names = await onFreshConnection(async (trx, repo) => {
        for (let i = 0; i < 3; i++) {
          expect((await repo.findById('2', trx))?.email).to.equal('grace@example.com');
          expect((await repo.findByEmail('GRACE@example.com', trx))?.id).to.equal('2');
          expect((await repo.getById('1', trx)).id).to.equal('1');
        }
        return preparedOn(trx);
      });
      // Each named after its shape and a hash of its SQL text, so one name never means two texts.
      expect(names).to.have.length(2);
      expect(names[0]).to.match(/^users_find_by_email_[0-9a-f]{12}$/);
      expect(names[1]).to.match(/^users_find_by_id_[0-9a-f]{12}$/);
    });

    it('runs the writes and list pages as named statements too, each prepared once per connection', async () => {
      const names = await onFreshConnection(async (trx, repo) => {
        for (let i = 0; i < 2; i++) {
          const user = await repo.create(
            { email: `prepared-${i}-${randomUUID()}@example.com`, name: 'P' },
            trx,
          );
          const renamed = await repo.update(user.id, { name: 'P2' }, user.version, trx);
          expect(renamed.version).to.equal(user.version + 1);
          expect((await repo.softDelete(user.id, trx)).status).to.equal('deleted');
          expect((await repo.list({ limit: 1 }, trx)).items).to.have.length(1);
        }
        return preparedOn(trx);
      });
      expect(names.map((n) => n.replace(/_[0-9a-f]{12}$/, ''))).to.deep.equal([
        'users_create',
        'users_list_live_first_asc',
        'users_soft_delete',
        'users_update_name',
      ]);
    });

    it('prepares nothing when preparedStatements is off (PgBouncer transaction mode)', async () => {
      // A knex of its own: fresh connections on which nothing was prepared yet.
      const names = await onFreshConnection(
        async (trx, unnamed) => {
          expect((await unnamed.findById('2', trx))?.id).to.equal('2');
          expect((await unnamed.findByEmail('grace@example.com', trx))?.id).to.equal('2');
          const user = await unnamed.create({ email: `unnamed-${randomUUID()}@example.com`, name: 'U' }, trx);
          await unnamed.update(user.id, { name: 'U2' }, user.version, trx);
          await unnamed.list({ limit: 1 }, trx);
          return preparedOn(trx);
        },
        { preparedStatements: false },
      );
      expect(names).to.deep.equal([]);
    });
  });
});
