import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { expect } from 'chai';
import type { Knex } from 'knex';
import pino from 'pino';
import { PostgresDatabase } from '../../../src/db/postgres-database.js';
import { TxManager } from '../../../src/db/tx/tx-manager.js';
import {
  childrenOf,
  onlySpan,
  serialisedSpans,
  useInMemoryTracing,
} from '../../support/in-memory-tracing.js';
import { useTestDatabase } from '../../support/test-database.js';

const silent = pino({ level: 'silent' });
/** A value bound as a parameter: it must never appear in a span. */
const BOUND = 'bound-literal-7f3a9c';

describe('tracing of PostgresDatabase and TxManager (real PostgreSQL, in-memory SDK)', () => {
  const db = useTestDatabase();
  const tracing = useInMemoryTracing();
  let pdb: PostgresDatabase;
  let knex: Knex;

  before(async () => {
    pdb = new PostgresDatabase(db().config({ maxOpenConns: 4 }), silent, { tracing: true });
    knex = pdb.driver();
    await knex.raw('create table notes (id serial primary key, body text not null)');
    await knex.raw('create table dots (k int not null)');
  });

  after(async () => {
    expect(pdb.getConnectionStats().inUse).to.equal(0);
    await pdb.close();
  });

  /** The test's spans: those of the statement above (create table) are reset before each test. */
  const spans = (): ReadableSpan[] => tracing().spans();

  /**
   * One real serialization failure at COMMIT: a concurrent serializable transaction reads what
   * `trx` writes and writes what `trx` reads, and commits first.
   */
  async function pivotAgainst(trx: Knex.Transaction): Promise<void> {
    const t1 = await knex.transaction(null, { isolationLevel: 'serializable' });
    await t1.raw('select count(*) from dots where k = 1');
    await trx.raw('select count(*) from dots where k = 2');
    await t1.raw('insert into dots values (2)');
    await trx.raw('insert into dots values (1)');
    await t1.commit();
  }

  describe('withTransaction()', () => {
    it('makes a transaction span, child of the active span, whose children are the acquire, the statements and the callback’s own spans', async () => {
      const { tracer } = tracing();
      await tracer.startActiveSpan('request', async (request) => {
        await pdb.withTransaction(
          async (trx) => {
            await trx('notes').insert({ body: BOUND });
            await tracer.startActiveSpan('app-work', async (own) => {
              await trx('notes').where({ body: BOUND }).select('id');
              own.end();
            });
          },
          { isolationLevel: 'repeatable read' },
        );
        request.end();
      });
      const all = spans();
      const request = onlySpan(all, 'request');
      const tx = onlySpan(all, 'db.transaction');
      expect(childrenOf(all, request)).to.deep.equal([tx]);
      expect(childrenOf(all, tx).map((s) => s.name)).to.deep.equal([
        'db.connection.acquire',
        'INSERT',
        'app-work',
      ]);
      const select = onlySpan(all, 'SELECT');
      expect(childrenOf(all, onlySpan(all, 'app-work'))).to.deep.equal([select]);

      const cfg = db().config();
      const database = {
        'db.system.name': 'postgresql',
        'db.namespace': cfg.name,
        'server.address': cfg.host,
        'server.port': cfg.port,
      };
      expect(tx.kind).to.equal(SpanKind.INTERNAL);
      expect(tx.status.code).to.equal(SpanStatusCode.UNSET);
      expect(tx.attributes).to.deep.equal({
        ...database,
        'pgdl.transaction.isolation_level': 'repeatable read',
        'pgdl.transaction.read_only': false,
        'pgdl.transaction.deferrable': false,
        'pgdl.transaction.propagation': 'required',
        'pgdl.transaction.max_attempts': 3,
        'pgdl.transaction.outcome': 'committed',
        'pgdl.transaction.attempts': 1,
      });
      const insert = onlySpan(all, 'INSERT');
      expect(insert.kind).to.equal(SpanKind.CLIENT);
      expect(insert.attributes).to.deep.equal({
        ...database,
        'db.operation.name': 'INSERT',
        'db.query.text': 'insert into "notes" ("body") values ($1)',
      });
      expect(select.attributes['db.query.text']).to.equal('select "id" from "notes" where "body" = $1');
      expect(onlySpan(all, 'db.connection.acquire').attributes).to.deep.equal(database);
    });

    it('adds a retry event with its reason and SQLSTATE for a real 40001 at COMMIT, and counts both attempts', async () => {
      let attempt = 0;
      await pdb.withTransaction(
        async (trx) => {
          attempt++;
          if (attempt === 1) await pivotAgainst(trx);
          else await trx.raw('insert into dots values (?)', [3]);
        },
        { isolationLevel: 'serializable', retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 10 } },
      );
      expect(attempt).to.equal(2);
      const tx = spans().find(
        (s) =>
          s.name === 'db.transaction' && s.attributes['pgdl.transaction.isolation_level'] === 'serializable',
      );
      expect(tx?.attributes).to.include({
        'pgdl.transaction.outcome': 'committed',
        'pgdl.transaction.attempts': 2,
      });
      expect(tx!.events.map((e) => e.name)).to.deep.equal(['retry']);
      const retry = tx!.events[0]!;
      expect(retry.attributes).to.include({
        'pgdl.retry.attempt': 1,
        'pgdl.retry.reason': 'serialization',
        'error.type': '40001',
        'db.response.status_code': '40001',
      });
      expect(retry.attributes!['pgdl.retry.delay_ms']).to.be.a('number');
      // Each attempt checked out its own connection, inside the transaction's span.
      const acquires = childrenOf(spans(), tx!).filter((s) => s.name === 'db.connection.acquire');
      expect(acquires.length).to.be.at.least(2);
    });

    it('marks the failed statement and the rolled-back transaction ERROR by SQLSTATE and class, without the message or the bound value', async () => {
      const err: unknown = await pdb
        .withTransaction((trx) => trx.raw('select ?::int as n', [BOUND]))
        .catch((e: unknown) => e);
      expect(err).to.be.instanceOf(Error);
      const all = spans();
      const statement = onlySpan(all, 'SELECT');
      expect(statement.status.code).to.equal(SpanStatusCode.ERROR);
      expect(statement.status.message).to.equal(undefined);
      expect(statement.attributes).to.include({
        'error.type': '22P02',
        'db.response.status_code': '22P02',
        'db.query.text': 'select $1::int as n',
      });
      const tx = onlySpan(all, 'db.transaction');
      expect(tx.status.code).to.equal(SpanStatusCode.ERROR);
      expect(tx.attributes).to.include({
        'pgdl.transaction.outcome': 'rolled_back',
        'error.type': (err as Error).constructor.name,
        'db.response.status_code': '22P02',
      });
      expect(tx.events).to.deep.equal([]);
      // The server's message echoes the value ("invalid input syntax for type integer: ..."),
      // and knex appends the statement to it: neither reaches a span.
      expect((err as Error).message).to.include(BOUND);
      expect(serialisedSpans(all)).not.to.include(BOUND);
    });

    it('records a timeout as outcome timeout, status ERROR, error.type TransactionTimeoutError', async () => {
      await pdb
        .withTransaction((trx) => trx.raw('select pg_sleep(2)'), { timeoutMs: 150 })
        .catch(() => undefined);
      const tx = onlySpan(spans(), 'db.transaction');
      expect(tx.status.code).to.equal(SpanStatusCode.ERROR);
      expect(tx.attributes).to.include({
        'pgdl.transaction.outcome': 'timeout',
        'pgdl.transaction.timeout_ms': 150,
        'error.type': 'TransactionTimeoutError',
      });
    });

    it('makes a span of its own for requiresNew, child of the outer transaction’s; a joined call makes none', async () => {
      await pdb.withTransaction(async (outer) => {
        await pdb.txManager.withTransaction((joined) => joined.raw('select 1'));
        await pdb.txManager.withTransaction((inner) => inner.raw('select 2'), { propagation: 'requiresNew' });
        await outer.raw('select 3');
      });
      const all = spans();
      const txs = all.filter((s) => s.name === 'db.transaction');
      expect(txs).to.have.length(2);
      const [inner, outer] = txs as [ReadableSpan, ReadableSpan];
      expect(inner.parentSpanContext?.spanId).to.equal(outer.spanContext().spanId);
      expect(inner.attributes['pgdl.transaction.propagation']).to.equal('requiresNew');
      expect(childrenOf(all, inner).map((s) => s.name)).to.deep.equal(['db.connection.acquire', 'SELECT']);
      expect(childrenOf(all, outer).map((s) => s.name)).to.deep.equal([
        'db.connection.acquire',
        'SELECT',
        'db.transaction',
        'SELECT',
      ]);
    });
  });

  it('traces a statement outside any transaction as a child of the active span, after its acquire', async () => {
    const { tracer } = tracing();
    await tracer.startActiveSpan('job', async (job) => {
      await knex('notes').where({ body: BOUND }).first('id');
      job.end();
    });
    const all = spans();
    expect(childrenOf(all, onlySpan(all, 'job')).map((s) => s.name)).to.deep.equal([
      'db.connection.acquire',
      'SELECT',
    ]);
  });

  it('puts neither the password nor a bound value in any span', async () => {
    const password = db().config().password;
    expect(password, 'the test database has a password').not.to.equal('');
    await pdb.withTransaction(async (trx) => {
      await trx('notes').insert({ body: BOUND });
      await trx('notes')
        .where({ body: BOUND })
        .update({ body: `${BOUND}-2` });
    });
    await knex.raw('select count(*) from notes where body = ?', [BOUND]);
    const text = serialisedSpans(spans());
    expect(spans().length).to.be.at.least(6);
    expect(text).not.to.include(password);
    expect(text).not.to.include(BOUND);
  });

  it('uses the given tracer, and makes no statement spans with statements: false', async () => {
    const own = new PostgresDatabase(db().config({ maxOpenConns: 2 }), silent, {
      tracing: { tracer: tracing().tracer, statements: false },
    });
    try {
      await own.withTransaction((trx) => trx('notes').select('id'));
      await own.driver().raw('select 1');
    } finally {
      await own.close();
    }
    const all = spans();
    expect(all.map((s) => s.name).sort()).to.deep.equal([
      'db.connection.acquire',
      'db.connection.acquire',
      'db.transaction',
    ]);
    expect(all.every((s) => s.instrumentationScope.name === 'test')).to.equal(true);
  });

  it('makes no span at all with tracing off, although an SDK is registered', async () => {
    const plain = new PostgresDatabase(db().config({ maxOpenConns: 2 }), silent);
    const tm = new TxManager(plain, silent);
    try {
      await plain.withTransaction((trx) => trx('notes').insert({ body: BOUND }));
      await tm.withTransaction((trx) => trx.raw('select 1'), { isolationLevel: 'serializable' });
      await tm.withTransaction((trx) => trx.raw('select ?::int', [BOUND])).catch(() => undefined);
      await plain.driver()('notes').select('id');
    } finally {
      await plain.close();
    }
    expect(spans()).to.deep.equal([]);
  });
});
