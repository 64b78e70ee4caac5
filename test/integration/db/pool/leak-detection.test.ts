import { setTimeout as delay } from 'node:timers/promises';
import { expect } from 'chai';
import { Writable } from 'node:stream';
import type { PostgresConfig } from '../../../../src/config/app-config.js';
import { PoolExhaustedError } from '../../../../src/db/errors/errors.js';
import type { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { createLogger } from '../../../../src/observability/logger.js';
import { WARN } from '../../../support/capture-logger.js';
import { useDatabases, waitFor } from '../../../support/postgres-database-helpers.js';
import { useTestDatabase } from '../../../support/test-database.js';

const LEAK_MESSAGE = 'a pool connection is held longer than leakDetectionThreshold (possible leak)';
const THIS_FILE = /leak-detection\.test\.ts:\d+:\d+/;
/** Frames a report must never show: dependencies, Node internals, this layer's own files. */
const FOREIGN = /node_modules|node:internal|src\/db\//;

/** The error a promise rejected with (fails the test when it resolves). */
async function rejectionOf(p: PromiseLike<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  expect.fail('expected a rejection');
}

describe('PostgresDatabase leak detection (leakDetectionThreshold)', () => {
  const testDb = useTestDatabase();
  const open = useDatabases();
  const make = (overrides: Partial<PostgresConfig>) => open(testDb().config(overrides));

  it('logs one warn line, naming this file as the caller, for a transaction held past the threshold', async () => {
    const { db, log } = make({ leakDetectionThreshold: 100 });
    await db.connect();
    await (async function holdsItsTransaction() {
      await db.withTransaction(async (trx) => {
        await trx.raw('select 1');
        await delay(400); // four times the threshold: still one line
      });
    })();
    const leaks = log.lines.filter((l) => l.msg === LEAK_MESSAGE);
    expect(leaks).to.have.length(1);
    const leak = leaks[0]!;
    expect(leak.level).to.equal(WARN);
    expect(leak.heldMs).to.be.within(100, 400);
    expect(leak.leakDetectionThresholdMs).to.equal(100);
    expect(leak.caller)
      .to.match(/^holdsItsTransaction \(/)
      .and.to.match(THIS_FILE);
    const stack = String(leak.stack).split('\n');
    expect(stack[0]).to.equal('acquired here');
    expect(stack.slice(1).join('\n')).to.match(THIS_FILE).and.not.to.match(FOREIGN);
    // Coming back is said once, at info.
    await waitFor(() => log.lines.some((l) => /reported as held too long was returned/.test(l.msg)));
  });

  it('stays silent for connections returned in time, and captures no stack when off', async () => {
    const quiet = make({ leakDetectionThreshold: 1_000 });
    await quiet.db.connect();
    await quiet.db.withTransaction((trx) => trx.raw('select pg_sleep(0.05)'));
    const off = make({ leakDetectionThreshold: 0 });
    await off.db.connect();
    const trx = await off.db.beginTx();
    try {
      await delay(50);
      expect(off.db.getConnectionStats().inUse).to.equal(1);
      await trx.raw('select 1');
    } finally {
      await trx.rollback();
    }
    expect([...quiet.log.lines, ...off.log.lines].filter((l) => l.msg === LEAK_MESSAGE)).to.deep.equal([]);
  });

  describe('PoolExhaustedError', () => {
    /** Takes the only connection of `db` in a named function of this file and keeps it. */
    async function holdTheOnlyConnection(db: PostgresDatabase) {
      return db.beginTx();
    }

    it('lists the oldest holders with the application frames that acquired them', async () => {
      const { db } = make({ maxOpenConns: 1, timeout: 300, leakDetectionThreshold: 60_000 });
      await db.connect();
      const held = await holdTheOnlyConnection(db);
      try {
        const err = await rejectionOf(db.withTransaction((trx) => trx.raw('select 1')));
        expect(err).to.be.instanceOf(PoolExhaustedError);
        const [oldest] = (err as PoolExhaustedError).holders;
        expect(oldest!.stack)
          .to.match(/^acquired here\n/)
          .and.to.match(/holdTheOnlyConnection/);
        expect(oldest!.stack).to.match(THIS_FILE).and.not.to.match(FOREIGN);
        expect((err as PoolExhaustedError).sql).to.equal(undefined); // a BEGIN waited, not a query
      } finally {
        await held.rollback();
      }
    });

    it("keeps the waiting query's SQL as a field and its bindings out of sight (message, keys, JSON, logs)", async () => {
      const { db } = make({ maxOpenConns: 1, timeout: 300 });
      await db.connect();
      const held = await holdTheOnlyConnection(db);
      const secret = 'leak-secret@example.test';
      try {
        const err = await rejectionOf(db.driver()('users').where({ email: secret }).first('id'));
        expect(err).to.be.instanceOf(PoolExhaustedError);
        const e = err as PoolExhaustedError;
        expect(e.sql).to.equal('select "id" from "users" where "email" = ? limit ?');
        expect(e.bindings).to.deep.equal([secret, 1]);
        expect(Object.keys(e)).to.include('sql').and.not.to.include('bindings');
        expect(e.message).not.to.contain(secret);
        expect(JSON.stringify(e)).not.to.contain(secret);
        const written: string[] = [];
        const logger = createLogger(
          { level: 'info', pretty: false, queryBindings: false, slowQueryThreshold: 1_000 },
          new Writable({
            write(chunk: Buffer, _enc, done) {
              written.push(chunk.toString());
              done();
            },
          }),
        );
        logger.error({ err: e }, 'request failed');
        expect(written.join('')).to.contain('select \\"id\\" from \\"users\\"').and.not.to.contain(secret);
      } finally {
        await held.rollback();
      }
    });
  });
});
