import { expect } from 'chai';
import type { Knex } from 'knex';
import pg from 'pg';
import pino from 'pino';
import { withPgClient } from '../../../../src/db/connection/with-pg-client.js';
import { CommitUnknownError } from '../../../../src/db/errors/errors.js';
import { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { setConnectionOpener, type DriverConnection } from '../../../../src/db/knex-internals.js';
import { TxManager } from '../../../../src/db/tx/tx-manager.js';
import { captureLogger } from '../../../support/capture-logger.js';
import { startDedicatedServer, type DedicatedServer } from '../../../support/embedded-test-server.js';
import { lookedUp } from '../../../support/lost-commit-cases.js';
import { useProxiedLedger } from '../../../support/proxied-ledger.js';
import { useTestDatabase } from '../../../support/test-database.js';

/*
 * A lost COMMIT is looked up only where its transaction ran (src/db/tx/tx-origin.ts): the xid
 * names another transaction on another server, on another timeline (a promoted standby reuses
 * the ids the dead primary handed out past what it replicated) or after a restart. The lookup
 * connection is redirected, through the pool's own opener, to a real other server, or its
 * answer is given another timeline or server run: what a failover makes it see.
 */

type Rewrite = (row: Record<string, unknown>) => void;

describe('TxManager: a lost COMMIT looked up on another server or timeline answers unknown', () => {
  const db = useTestDatabase();
  const ledger = useProxiedLedger(db);
  let other: DedicatedServer;
  let knex: Knex;
  let original: () => Promise<DriverConnection>;
  /** Where the next connections go: the proxy (the pool's opener), or a rewritten / other server. */
  let redirect: (() => Promise<DriverConnection>) | undefined;

  before(async () => {
    other = await startDedicatedServer();
    knex = ledger().pdb.driver();
    const client = knex.client as { acquireRawConnection: () => Promise<DriverConnection> };
    original = client.acquireRawConnection.bind(client);
    setConnectionOpener(knex, () => (redirect ?? original)());
  });

  afterEach(() => {
    redirect = undefined;
    ledger().proxy.refuseNewConnections(false);
  });

  after(async () => {
    expect(ledger().pdb.getConnectionStats().inUse).to.equal(0);
    await ledger().close();
    await other.destroy();
  });

  /** The lookup's connections answer with `rewrite` applied to each row (what a failover would make them see). */
  const rewriting = (rewrite: Rewrite) => async (): Promise<DriverConnection> => {
    const conn = await original();
    const client = conn as unknown as {
      query: (...args: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;
    };
    const query = client.query.bind(client);
    client.query = async (...args: unknown[]) => {
      const res = await query(...args);
      if (typeof args[0] === 'string' && args[0].includes('pg_xact_status')) res.rows.forEach(rewrite);
      return res;
    };
    return conn;
  };

  /** A transfer-like insert whose COMMIT reaches the server and whose answer is cut; `before` runs just before COMMIT. */
  const cutAfterCommit = async (
    id: number,
    beforeCommit: (xid: string) => Promise<void> = async () => {},
  ) => {
    const { logger, lines } = captureLogger();
    const tm = new TxManager(ledger().pdb, logger, {
      commitLookupTimeoutMs: 5_000,
      transactions: { resolveAcrossFailover: true },
    });
    let calls = 0;
    const outcome = await tm
      .withTransaction(async (trx) => {
        calls++;
        await trx('ledger').insert({ id, note: 'lost commit' });
        const { rows } = await trx.raw<{ rows: Array<{ xid: string }> }>(
          'select pg_current_xact_id()::text as xid',
        );
        await beforeCommit(rows[0]!.xid);
      })
      .then(
        () => 'committed' as const,
        (e: unknown) => e,
      );
    return { outcome, calls, lookups: lookedUp(lines) };
  };

  /** The timeline `steps` after `timeline` (8 hex digits, as pg_walfile_name writes it). */
  const later = (timeline: unknown, steps: number): string =>
    (Number.parseInt(String(timeline), 16) + steps).toString(16).toUpperCase().padStart(8, '0');
  const otherRun = (row: Record<string, unknown>): void => void (row.run = `${String(row.run)}-restarted`);

  // What a failover or a restart makes the lookup see, and whether its answer may be used.
  const cases: Array<[string, Rewrite, 'unknown' | 'committed']> = [
    [
      'a timeline two steps on, although it replayed the WAL',
      (row) => ((row.timeline = later(row.timeline, 2)), otherRun(row), (row.replayed = true)),
      'unknown',
    ],
    [
      'a promoted node (the next timeline) that had not replayed up to the position recorded before COMMIT',
      (row) => ((row.timeline = later(row.timeline, 1)), otherRun(row), (row.replayed = false)),
      'unknown',
    ],
    [
      'another run of the server (restarted in place) that did not replay that far',
      (row) => (otherRun(row), (row.replayed = null)),
      'unknown',
    ],
    [
      'a standby (no timeline: it cannot be compared)',
      (row) => ((row.timeline = null), (row.replayed = true)),
      'unknown',
    ],
    [
      'a promoted node (the next timeline) that replayed past the position recorded before COMMIT',
      (row) => ((row.timeline = later(row.timeline, 1)), otherRun(row), (row.replayed = true)),
      'committed',
    ],
  ];
  cases.forEach(([where, rewrite, expected], i) => {
    it(`answers ${expected} from ${where}`, async () => {
      const id = 10 + i;
      ledger().proxy.onNextCommit('cut-after-forward');
      const { outcome, calls, lookups } = await cutAfterCommit(id, () => {
        redirect = rewriting(rewrite);
        return Promise.resolve();
      });
      if (expected === 'unknown') expect(outcome).to.be.instanceOf(CommitUnknownError);
      else expect(outcome).to.equal('committed');
      expect(calls).to.equal(1);
      expect(lookups).to.deep.equal([expected]);
      // It did commit: "unknown" is all the layer may say there; a blind retry would write it twice.
      expect(await ledger().rowsWithId(id)).to.equal(1);
    });
  });

  it('never answers committed from another server where the same xid committed (the row is not there)', async () => {
    ledger().proxy.onNextCommit('cut-before-forward', { thenRefuse: true });
    const { outcome, lookups } = await cutAfterCommit(3, async (xid) => {
      // On the other server, the same xid belongs to a transaction that committed.
      await withPgClient(other.url(), async (c) => {
        const { rows } = await c.query<{ n: string }>('select pg_current_xact_id()::text as n');
        const behind = Number(xid) - Number(rows[0]!.n) + 2;
        if (behind > 0)
          await c.query(
            `do $$ begin for i in 1..${behind} loop perform pg_current_xact_id(); commit; end loop; end $$`,
          );
        const status = await c.query<{ s: string }>('select pg_xact_status($1::xid8) as s', [xid]);
        expect(status.rows[0]!.s, `xid ${xid} on the other server`).to.equal('committed');
      });
      redirect = async () => {
        const client = new pg.Client({ connectionString: other.url() });
        client.on('error', () => {}); // pg#2762
        await client.connect();
        return client;
      };
    });
    expect(outcome).to.be.instanceOf(CommitUnknownError);
    expect(lookups).to.deep.equal(['unknown']);
    expect(await ledger().rowsWithId(3)).to.equal(0);
  });

  for (const xidAtBegin of [true, false]) {
    it(`reads where it ran once per connection (xid ${xidAtBegin ? 'with BEGIN' : 'before COMMIT'}): later transactions on it skip the system identifier`, async () => {
      const sent: string[] = [];
      const onQuery = (q: { sql: string }): void => {
        if (q.sql.includes('pg_current_xact_id')) sent.push(q.sql);
      };
      const tm = new TxManager(ledger().pdb, pino({ level: 'silent' }), {
        transactions: { resolveAcrossFailover: !xidAtBegin },
      });
      knex.on('query', onQuery);
      try {
        for (let i = 0; i < 6; i++)
          await tm.withTransaction((trx) =>
            trx('ledger').insert({ id: (xidAtBegin ? 100 : 200) + i, note: 'cache' }),
          );
      } finally {
        knex.off('query', onQuery);
      }
      expect(sent).to.have.length(6);
      expect(sent.every((sql) => sql.startsWith('BEGIN') === xidAtBegin)).to.equal(true);
      const full = sent.filter((sql) => sql.includes('pg_control_system')).length;
      // At most one per pool connection (3), and none on a connection that has read it already.
      expect(full).to.be.at.most(3);
      expect(sent.length - full).to.be.at.least(3);
    });
  }

  it('records and looks up as a role with no privilege beyond its table (least privilege)', async () => {
    const role = `origin_app_${process.pid}`;
    await withPgClient(db().url, async (c) => {
      await c.query(`create role ${role} login password 'origin-secret'`);
      await c.query(`grant select, insert on ledger to ${role}`);
    });
    const pdb = new PostgresDatabase(
      db().config({
        host: '127.0.0.1',
        port: ledger().proxy.port,
        username: role,
        password: 'origin-secret',
        maxOpenConns: 1,
      }),
      pino({ level: 'silent' }),
    );
    try {
      const { logger, lines } = captureLogger();
      const tm = new TxManager(pdb, logger);
      ledger().proxy.onNextCommit('cut-after-forward');
      await tm.withTransaction((trx) => trx('ledger').insert({ id: 4, note: 'least privilege' }));
      expect(lookedUp(lines)).to.deep.equal(['committed']);
      expect(await ledger().rowsWithId(4)).to.equal(1);
    } finally {
      await pdb.close();
      await withPgClient(db().url, async (c) => {
        await c.query(`revoke all on ledger from ${role}`);
        await c.query(`drop role ${role}`);
      });
    }
  });
});
