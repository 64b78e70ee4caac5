import { expect } from 'chai';
import knexFactory from 'knex';
import pg from 'pg';
import {
  acquirePooled,
  assertDriverShape,
  guardAuthentication,
  pgDialectWithClient,
  closeIdleConnections,
  idleConnectionsOf,
  isBroken,
  markBroken,
  releasePooled,
  replaceNextCommit,
  runStatement,
  tarnPoolOf,
  transactionEnders,
} from '../../../src/db/knex-internals.js';
import { PoolExhaustedError, TransactionStateError } from '../../../src/db/index.js';
import { useDatabases } from '../../support/postgres-database-helpers.js';
import { useTestDatabase } from '../../support/test-database.js';

// The adapter is the only code that reads private members of knex, tarn and pg. These tests
// run it against the installed versions, so an upgrade that drops one fails here, by name,
// instead of silently weakening a guarantee.
describe('knex-internals', () => {
  const testDb = useTestDatabase();
  const open = useDatabases();

  it('finds every private member it relies on in the installed knex, tarn and pg', async () => {
    const { db } = open(testDb().config({ maxOpenConns: 2 }));
    await db.connect();
    const knex = db.driver();
    const conn = await acquirePooled(knex);
    try {
      expect(() => assertDriverShape(knex, conn)).not.to.throw();
      expect(conn.processID).to.be.a('number').and.to.be.above(0);
      expect(tarnPoolOf(knex)?.numUsed()).to.equal(1);
    } finally {
      await releasePooled(knex, conn);
    }
  });

  it("finds knex's trx.commit and trx.rollback to be arrow functions, which it keeps unbound", async () => {
    const { db } = open(testDb().config({ maxOpenConns: 1 }));
    await db.connect();
    const trx = await db.driver().transaction();
    try {
      const { commit, rollback } = transactionEnders(trx);
      // An arrow function has no prototype; a method or a plain function does.
      expect(commit).to.not.have.property('prototype');
      expect(rollback).to.not.have.property('prototype');
      const nested = await trx.transaction();
      expect(transactionEnders(nested).commit).to.not.have.property('prototype');
      await transactionEnders(nested).commit();
    } finally {
      await transactionEnders(trx).rollback(undefined);
    }
  });

  it("sends knex's own COMMIT as the string 'COMMIT;', which replaceNextCommit swaps once for another statement", async () => {
    const { db } = open(testDb().config({ maxOpenConns: 1 }));
    await db.connect();
    const knex = db.driver();
    const sent: string[] = [];
    const listen = (q: { sql: string }): number => sent.push(q.sql);
    knex.on('query', listen);
    try {
      const plain = await knex.transaction();
      await plain.commit();
      const trx = await knex.transaction();
      replaceNextCommit(trx, "select 'instead of commit'");
      await trx.commit();
      await trx.executionPromise;
      expect(trx.isCompleted()).to.equal(true);
      // The swap was one-shot, and the session is still in the transaction the select did not end.
      expect(sent).to.deep.equal(['BEGIN;', 'COMMIT;', 'BEGIN;', "select 'instead of commit'"]);
    } finally {
      knex.off('query', listen);
      const conn = await acquirePooled(knex);
      markBroken(conn, 'left inside a transaction by this test');
      await releasePooled(knex, conn);
    }
  });

  it('names each missing member when the shape has changed', () => {
    const knex = knexFactory({ client: 'pg', connection: {}, pool: { min: 0, max: 1 } });
    try {
      const client = knex.client as Record<string, unknown>;
      client.checkVersion = undefined;
      const pool = client.pool as Record<string, unknown>;
      pool.free = undefined;
      expect(() => assertDriverShape(knex, {})).to.throw(
        /checkVersion, tarn Pool#free, pg Client#processID, pg Client#secretKey, pg Client#ssl, pg Client#_queryable, pg Client#_ending, pg Client#_handleAuthCleartextPassword, pg Client#_handleAuthMD5Password, pg Client#_handleAuthSASL, pg Connection#sendSASLInitialResponseMessage, pg Connection#on, pg Connection#emit, pg Client#connection.stream/,
      );
    } finally {
      void knex.destroy();
    }
  });

  it("guards pg's authentication handlers on the instance, and reports false when pg lacks one", () => {
    const client = new pg.Client({ host: 'localhost' });
    const proto = pg.Client.prototype as unknown as Record<string, unknown>;
    expect(guardAuthentication(client, () => undefined)).to.equal(true);
    const own = client as unknown as Record<string, unknown>;
    for (const m of ['_handleAuthCleartextPassword', '_handleAuthMD5Password', '_handleAuthSASL']) {
      expect(proto[m], m).to.be.a('function');
      expect(Object.hasOwn(own, m), m).to.equal(true);
    }
    const older = new pg.Client({ host: 'localhost' });
    (older as unknown as Record<string, unknown>)._handleAuthMD5Password = undefined;
    expect(guardAuthentication(older, () => undefined)).to.equal(false);
  });

  it("makes knex's pg dialect create its connections with the given pg Client class", async () => {
    const created: unknown[] = [];
    class Recording extends pg.Client {
      constructor(config: pg.ClientConfig) {
        super(config);
        created.push(this);
      }
    }
    const { host, port, name: database, username: user, password } = testDb().config();
    const knex = knexFactory({
      client: pgDialectWithClient(Recording),
      connection: { host, port, database, user, password },
    });
    try {
      const driver = (knex.client as unknown as { driver: typeof pg }).driver;
      expect(driver.Client).to.equal(Recording);
      expect(driver.types).to.equal(pg.types);
      await knex.raw('select 1');
      expect(created).to.have.length(1);
    } finally {
      await knex.destroy();
    }
  });

  it('marks a connection broken so that the pool never hands it out again', async () => {
    const { db } = open(testDb().config({ maxOpenConns: 1 }));
    await db.connect();
    const knex = db.driver();
    const first = await acquirePooled(knex);
    expect(isBroken(first)).to.equal(false);
    markBroken(first, 'test');
    await releasePooled(knex, first);
    const second = await acquirePooled(knex);
    try {
      expect(second).not.to.equal(first);
      expect(isBroken(second)).to.equal(false);
    } finally {
      await releasePooled(knex, second);
    }
  });

  it("finds the shape of tarn's idle entries (resource, timestamp, settle) and lists them oldest first", async () => {
    const { db } = open(testDb().config({ maxOpenConns: 2, maxIdleConns: 2 }));
    await db.connect();
    const knex = db.driver();
    const [a, b] = [await acquirePooled(knex), await acquirePooled(knex)];
    const before = Date.now();
    await releasePooled(knex, a);
    await releasePooled(knex, b);
    expect(() => assertDriverShape(knex, a)).not.to.throw();
    const idle = idleConnectionsOf(tarnPoolOf(knex)!);
    expect(idle.map((i) => i.connection)).to.deep.equal([a, b]); // tarn hands out b, the last one, first
    for (const i of idle) expect(i.idleSince).to.be.within(before, Date.now());
  });

  it('names the members an idle entry lacks', async () => {
    const knex = knexFactory({ client: 'pg', connection: {}, pool: { min: 0, max: 1 } });
    try {
      const pool = (knex.client as { pool: { free: unknown[] } }).pool;
      pool.free = [{ resource: {} }];
      expect(() => assertDriverShape(knex, {})).to.throw(/tarn Resource#timestamp, tarn Resource#settle/);
    } finally {
      await knex.destroy();
    }
  });

  it('closes exactly the idle connections asked for, telling the caller just before each destroyRequest', async () => {
    const { db } = open(testDb().config({ maxOpenConns: 3, maxIdleConns: 3 }));
    await db.connect();
    const knex = db.driver();
    const conns = [await acquirePooled(knex), await acquirePooled(knex), await acquirePooled(knex)];
    const busy = conns.pop()!;
    for (const c of conns) await releasePooled(knex, c);
    const pool = tarnPoolOf(knex)!;
    const events: string[] = [];
    pool.on('destroyRequest', (_id, c) => events.push(`destroy ${conns.indexOf(c)}`));
    const closed = closeIdleConnections(pool, new Set([conns[0]!, busy]), (c) =>
      events.push(`before ${conns.indexOf(c)}`),
    );
    expect(closed).to.equal(1); // the one in use is not idle: left alone
    expect(events).to.deep.equal(['before 0', 'destroy 0']);
    expect(idleConnectionsOf(pool).map((i) => i.connection)).to.deep.equal([conns[1]]);
    await releasePooled(knex, busy);
  });

  describe('runStatement', () => {
    const pidSql = 'select pg_backend_pid() as pid, $1::int as n';

    it("runs on the pool through the gate, emitting knex's query and query-response events with one uid", async () => {
      const { db } = open(testDb().config({ maxOpenConns: 2 }));
      await db.connect();
      const knex = db.driver();
      const seen: Array<[string, unknown]> = [];
      knex.on('query', (q: { __knexQueryUid?: string }) => seen.push(['query', q.__knexQueryUid]));
      knex.on('query-response', (_r: unknown, q: { __knexQueryUid?: string }) =>
        seen.push(['response', q.__knexQueryUid]),
      );
      const result = await runStatement(knex, { sql: pidSql, bindings: [7], name: 'knex_internals_pid' });
      expect(result.rows).to.have.length(1);
      expect(result.rows[0]).to.include({ n: 7 });
      expect(seen.map(([event]) => event)).to.deep.equal(['query', 'response']);
      expect(seen[0]![1]).to.be.a('string').and.equal(seen[1]![1]);
      expect(db.getConnectionStats().inUse).to.equal(0);
    });

    it("runs inside a transaction on the transaction's own connection, and is refused once it ended", async () => {
      const { db } = open(testDb().config({ maxOpenConns: 2 }));
      await db.connect();
      let ended: import('knex').Knex.Transaction | undefined;
      await db.txManager.withTransaction(async (trx) => {
        ended = trx;
        const inside = await runStatement(trx, { sql: pidSql, bindings: [1] });
        const direct = await trx.raw<{ rows: Array<{ pid: number }> }>('select pg_backend_pid() as pid');
        expect((inside.rows[0] as { pid: number }).pid).to.equal(direct.rows[0]!.pid);
      });
      const err: unknown = await runStatement(ended!, { sql: pidSql, bindings: [2] }).then(
        () => expect.fail('ran on an ended transaction'),
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(TransactionStateError);
    });

    it('puts its SQL and bindings on the PoolExhaustedError of a checkout that timed out', async () => {
      const { db } = open(testDb().config({ maxOpenConns: 1, timeout: 200 }));
      await db.connect();
      const knex = db.driver();
      const held = await acquirePooled(knex);
      try {
        const err: unknown = await runStatement(knex, { sql: pidSql, bindings: [3] }).then(
          () => expect.fail('the checkout did not time out'),
          (e: unknown) => e,
        );
        expect(err).to.be.instanceOf(PoolExhaustedError);
        expect((err as PoolExhaustedError).sql).to.equal(pidSql);
        expect((err as { bindings?: unknown }).bindings).to.deep.equal([3]);
      } finally {
        await releasePooled(knex, held);
      }
    });
  });
});
