import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { SerializationError, TransactionTimeoutError } from '../../../src/db/errors/errors.js';
import { attachQueryTracer } from '../../../src/db/query-tracer.js';
import { dbSpanAttributes, failureAttributes } from '../../../src/db/span-attributes.js';
import { tracerOf } from '../../../src/observability/tracing.js';
import { useInMemoryTracing } from '../../support/in-memory-tracing.js';

/** A knex instance that never connects (no statement is run). */
function idleKnex(connection: Knex.Config['connection']): Knex {
  return knexFactory({ client: 'pg', connection, pool: { min: 0, max: 1 } });
}

describe('tracerOf()', () => {
  it('returns no tracer when tracing is absent or false', () => {
    expect(tracerOf(undefined)).to.equal(undefined);
    expect(tracerOf(false)).to.equal(undefined);
  });

  it('returns the given tracer, else one from the global provider', () => {
    const own = trace.getTracer('own');
    expect(tracerOf({ tracer: own })).to.equal(own);
    expect(tracerOf(true)).to.be.an('object').that.has.property('startSpan');
    expect(tracerOf({ statements: false }))
      .to.be.an('object')
      .that.has.property('startSpan');
  });
});

describe('dbSpanAttributes()', () => {
  it('names the system, the database and the server from the connection settings', async () => {
    const knex = idleKnex({
      host: 'db.internal',
      port: 6543,
      database: 'orders',
      user: 'app',
      password: 'pw-1',
    });
    try {
      expect(dbSpanAttributes(knex)).to.deep.equal({
        'db.system.name': 'postgresql',
        'db.namespace': 'orders',
        'server.address': 'db.internal',
        'server.port': 6543,
      });
    } finally {
      await knex.destroy();
    }
  });

  it('takes the server and database of a connection string, never its password', async () => {
    const knex = idleKnex('postgres://app:pw-2@db.internal:6543/orders');
    try {
      const attributes = dbSpanAttributes(knex);
      expect(attributes).to.deep.equal({
        'db.system.name': 'postgresql',
        'db.namespace': 'orders',
        'server.address': 'db.internal',
        'server.port': 6543,
      });
      expect(JSON.stringify(attributes)).not.to.include('pw-2');
    } finally {
      await knex.destroy();
    }
  });
});

describe('failureAttributes()', () => {
  const driverError = (code: string): Error => Object.assign(new Error('invalid input: "secret"'), { code });

  it('gives the class name as error.type, and the SQLSTATE from the cause chain', () => {
    const translated = new SerializationError('conflict', '40001', { cause: driverError('40001') });
    expect(failureAttributes(translated)).to.deep.equal({
      'error.type': 'SerializationError',
      'db.response.status_code': '40001',
    });
    expect(failureAttributes(new TransactionTimeoutError(150))).to.deep.equal({
      'error.type': 'TransactionTimeoutError',
    });
  });

  it('gives the SQLSTATE as error.type for a statement', () => {
    expect(failureAttributes(driverError('22P02'), true)).to.deep.equal({
      'error.type': '22P02',
      'db.response.status_code': '22P02',
    });
    // objection's translated errors keep the driver's as `nativeError`.
    class WrappedError extends Error {
      constructor(readonly nativeError: Error) {
        super('bad input');
      }
    }
    const translated = new WrappedError(driverError('22P02'));
    expect(failureAttributes(translated, true)).to.include({ 'error.type': '22P02' });
    expect(failureAttributes(translated)).to.include({ 'error.type': 'WrappedError' });
  });

  it('never carries the message, and falls back to _OTHER', () => {
    expect(JSON.stringify(failureAttributes(driverError('22P02')))).not.to.include('secret');
    expect(failureAttributes('a string')).to.deep.equal({ 'error.type': '_OTHER' });
    expect(failureAttributes(Object.create(null))).to.deep.equal({ 'error.type': '_OTHER' });
  });
});

describe('attachQueryTracer()', () => {
  const tracing = useInMemoryTracing();
  let knex: Knex;
  let detach: () => void;
  const db = { 'db.system.name': 'postgresql', 'db.namespace': 'app' };

  beforeEach(() => {
    knex = idleKnex({ host: 'localhost', database: 'app' });
    detach = attachQueryTracer(knex, tracing().tracer, db);
  });

  afterEach(async () => {
    detach();
    await knex.destroy();
  });

  it('makes a CLIENT span from query to query-response, named after the operation, without the bindings', () => {
    const q = { __knexQueryUid: 'u1', sql: 'update "t" set "a" = $1', bindings: ['bound-secret'] };
    knex.emit('query', q);
    expect(tracing().spans()).to.deep.equal([]);
    knex.emit('query-response', [], { ...q });
    const [span, ...rest] = tracing().spans();
    expect(rest).to.deep.equal([]);
    expect(span!.name).to.equal('UPDATE');
    expect(span!.kind).to.equal(SpanKind.CLIENT);
    expect(span!.attributes).to.deep.equal({
      ...db,
      'db.operation.name': 'UPDATE',
      'db.query.text': 'update "t" set "a" = $1',
    });
  });

  it('ends a failed statement with status ERROR and the SQLSTATE, not the message', () => {
    const q = { __knexQueryUid: 'u2', sql: 'select $1::int' };
    knex.emit('query', q);
    knex.emit(
      'query-error',
      Object.assign(new Error('invalid input syntax: "bound-secret"'), { code: '22P02' }),
      q,
    );
    const [span] = tracing().spans();
    expect(span!.status).to.deep.equal({ code: SpanStatusCode.ERROR });
    expect(span!.attributes).to.include({ 'error.type': '22P02', 'db.response.status_code': '22P02' });
    expect(JSON.stringify(span!.attributes)).not.to.include('bound-secret');
  });

  it('ignores statements without a query id (knex’s BEGIN/COMMIT, the manager’s own)', () => {
    knex.emit('query', { sql: 'BEGIN;' });
    knex.emit('query-response', [], { sql: 'BEGIN;' });
    expect(tracing().spans()).to.deep.equal([]);
  });

  it('names a statement that starts with no keyword after the system, and ends open spans when detached', () => {
    knex.emit('query', { __knexQueryUid: 'u3', sql: '/* c */ select 1' });
    detach();
    const [span] = tracing().spans();
    expect(span!.name).to.equal('postgresql');
    expect(span!.attributes).not.to.have.property('db.operation.name');
  });
});
