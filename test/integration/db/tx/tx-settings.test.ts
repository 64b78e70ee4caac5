import { expect } from 'chai';
import type { Knex } from 'knex';
import pino from 'pino';
import { TxOptionsError } from '../../../../src/db/errors/errors.js';
import { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { usePgBouncer } from '../../../support/pgbouncer.js';
import { TcpProxy } from '../../../support/tcp-proxy.js';
import { useTestDatabase } from '../../../support/test-database.js';
import { statementsOf } from '../../../support/statements-sent.js';

const silent = pino({ level: 'silent' });
type Rows<R> = { rows: R[] };

/** `app.tenant_id` as the session sees it now, and the backend's pid. */
async function tenantSetting(q: Knex | Knex.Transaction): Promise<{ v: string | null; pid: number }> {
  const res = await q.raw<Rows<{ v: string | null; pid: number }>>(
    "select current_setting('app.tenant_id', true) as v, pg_backend_pid() as pid",
  );
  return res.rows[0]!;
}

describe('TxOptions.settings: per-transaction session settings (real PostgreSQL)', () => {
  const db = useTestDatabase();
  let proxy: TcpProxy;
  let pdb: PostgresDatabase;
  let knex: Knex;

  before(async () => {
    const direct = db().config();
    proxy = await TcpProxy.start({ host: direct.host, port: direct.port });
    // One connection: "the same pooled connection" afterwards is that one.
    pdb = new PostgresDatabase(db().config({ host: '127.0.0.1', port: proxy.port, maxOpenConns: 1 }), silent);
    knex = pdb.driver();
    await knex.raw(`
      create table tenant_notes (id serial primary key, tenant_id int not null, body text not null);
      insert into tenant_notes (tenant_id, body) values (42, 'of 42'), (7, 'of 7');
      alter table tenant_notes enable row level security;
      create policy tenant_only on tenant_notes using (tenant_id = current_setting('app.tenant_id')::int);
      do $$ begin
        if not exists (select from pg_roles where rolname = 'tenant_reader') then create role tenant_reader; end if;
      end $$;
      grant select on tenant_notes to tenant_reader;
    `);
  });

  after(async () => {
    await pdb.close();
    await proxy.close();
  });

  it('lets a row-level-security policy read the setting, for that transaction only, on the same pooled connection', async () => {
    const seen = await pdb.withTransaction(
      async (trx) => {
        // The table owner bypasses RLS: read as a role the policy applies to.
        await trx.raw('set local role tenant_reader');
        const rows = await trx('tenant_notes').select('body');
        return { bodies: rows.map((r: { body: string }) => r.body), ...(await tenantSetting(trx)) };
      },
      { settings: { 'app.tenant_id': '42' } },
    );
    expect(seen.bodies).to.deep.equal(['of 42']);
    expect(seen.v).to.equal('42');
    const after = await tenantSetting(knex);
    expect(after.pid, 'the same pooled connection').to.equal(seen.pid);
    // PostgreSQL keeps a custom setting defined once, with an empty value after the transaction.
    expect(after.v ?? '').to.equal('');
  });

  it("sends the settings in BEGIN's message: as many round trips as without them", async () => {
    const count = (fn: () => Promise<unknown>) => statementsOf(knex, proxy, fn);
    const work = (trx: Knex.Transaction) => trx.raw('select 1');
    const plain = await count(() => pdb.withTransaction(work));
    const withSettings = await count(() =>
      pdb.withTransaction(work, { settings: { 'app.tenant_id': 7, 'app.user': 'ada' } }),
    );
    expect(withSettings.length).to.equal(plain.length);
    expect(withSettings.length).to.equal(3);
    expect(withSettings[0]).to.equal(
      "BEGIN; select pg_current_xact_id()::text as xid, set_config('app.tenant_id', '7', true), set_config('app.user', 'ada', true)",
    );
  });

  it('keeps values that look like SQL inert: the setting holds them verbatim and nothing else runs', async () => {
    const hostile = [
      "42'); drop table tenant_notes; --",
      "\\'; drop table tenant_notes; --",
      "x' , true); select pg_sleep(10); --",
      'E\'\\x27 $$ $tag$ "quoted" ; commit;',
    ];
    for (const value of hostile) {
      const seen = await pdb.withTransaction((trx) => tenantSetting(trx), {
        settings: { 'app.tenant_id': value },
      });
      expect(seen.v, value).to.equal(value);
    }
    const { rows } = await knex.raw<Rows<{ n: string }>>('select count(*) as n from tenant_notes');
    expect(Number(rows[0]!.n)).to.equal(2);
  });

  it('rejects a bad setting name or value with TxOptionsError naming it, before any statement is sent', async () => {
    const before = proxy.statementsSeen;
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ "app.tenant_id'); drop table x; --": '1' }, "app.tenant_id'); drop table x; --"],
      [{ 'app tenant': '1' }, 'app tenant'],
      [{ '': '1' }, '""'],
      [{ 'app.tenant_id': { id: 1 } }, 'app.tenant_id'],
      [{ 'app.tenant_id': null }, 'app.tenant_id'],
      [{ 'app.tenant_id': 'a\0b' }, 'NUL'],
    ];
    for (const [settings, named] of bad) {
      const err = await pdb
        .withTransaction(() => Promise.resolve(), { settings: settings as Record<string, string> })
        .catch((e: unknown) => e);
      expect(err, JSON.stringify(settings)).to.be.instanceOf(TxOptionsError);
      expect((err as Error).message).to.include(named);
    }
    expect(proxy.statementsSeen).to.equal(before);
  });

  it('applies the settings of a joining call for its callback only, and restores the outer values after it', async () => {
    const seen = await pdb.withTransaction(
      async () => {
        const trx = pdb.txManager.current()!;
        const inRequired = await pdb.withTransaction((t) => tenantSetting(t), {
          settings: { 'app.tenant_id': '2' },
        });
        const afterRequired = await tenantSetting(trx);
        const inNested = await pdb.withTransaction((t) => tenantSetting(t), {
          propagation: 'nested',
          settings: { 'app.tenant_id': '3' },
        });
        const afterNested = await tenantSetting(trx);
        return [inRequired.v, afterRequired.v, inNested.v, afterNested.v];
      },
      { settings: { 'app.tenant_id': '1' } },
    );
    expect(seen).to.deep.equal(['2', '1', '3', '1']);
  });
});

describe('TxOptions.settings behind PgBouncer in transaction mode', () => {
  const db = useTestDatabase();
  const bouncer = usePgBouncer({ poolSize: 1 });

  it('applies the settings with the pooler-mode limits in one BEGIN message, and none stays on the shared server connection', async () => {
    const pdb = new PostgresDatabase(
      db().config({
        host: bouncer().host,
        port: bouncer().port,
        poolerMode: 'transaction',
        maxRetries: 0,
        statementTimeout: 4_000,
        maxOpenConns: 2,
      }),
      silent,
    );
    try {
      await pdb.connect();
      const inside = await pdb.withTransaction(
        async (trx) =>
          (
            await trx.raw<Rows<{ v: string; st: string }>>(
              "select current_setting('app.tenant_id') as v, current_setting('statement_timeout') as st",
            )
          ).rows[0]!,
        { settings: { 'app.tenant_id': "42'; --" } },
      );
      expect(inside).to.deep.equal({ v: "42'; --", st: '4s' });
      // Another client of PgBouncer's single server connection sees nothing of it.
      const after = await tenantSetting(pdb.driver());
      expect(after.v ?? '').to.equal('');
    } finally {
      await pdb.close();
    }
  });
});
