import { expect } from 'chai';
import { classifyError, isTransient, sqlStateOf } from '../../../../src/db/errors/classify-error.js';
import {
  CommitUnknownError,
  ConnectionError,
  PoolExhaustedError,
  SerializationError,
  TransactionAbortedError,
  TransactionTimeoutError,
  UniqueViolationError,
} from '../../../../src/db/errors/errors.js';

/** A pg DatabaseError as the driver builds it (SQLSTATE in `code`). */
function pgError(code: string, message = 'server said no'): Error {
  return Object.assign(new Error(message), {
    code,
    severity: 'ERROR',
    table: undefined,
    internalQuery: undefined,
  });
}

describe('classifyError()', () => {
  const cases: Array<[string, unknown, string, boolean]> = [
    ['40001', pgError('40001'), 'serialization', true],
    ['40P01', pgError('40P01'), 'deadlock', true],
    ['08006', pgError('08006'), 'connection', true],
    ['57P01 (admin shutdown)', pgError('57P01'), 'connection', true],
    ['57P02', pgError('57P02'), 'connection', true],
    ['57P03', pgError('57P03'), 'connection', true],
    ['ECONNRESET', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 'connection', true],
    [
      'ECONNREFUSED',
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      'connection',
      true,
    ],
    ['EPIPE', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }), 'connection', true],
    ['Connection terminated', new Error('Connection terminated unexpectedly'), 'connection', true],
    [
      'not queryable',
      new Error('Client has encountered a connection error and is not queryable'),
      'connection',
      true,
    ],
    ['57014', pgError('57014', 'canceling statement due to statement timeout'), 'timeout', false],
    ['55P03', pgError('55P03'), 'timeout', false],
    ['Query read timeout', new Error('Query read timeout'), 'timeout', false],
    ['TransactionTimeoutError', new TransactionTimeoutError(100), 'timeout', false],
    [
      'knex acquire timeout',
      Object.assign(new Error('Knex: Timeout acquiring a connection. The pool is probably full.'), {
        name: 'KnexTimeoutError',
      }),
      'pool',
      false,
    ],
    ['PoolExhaustedError', new PoolExhaustedError('full'), 'pool', false],
    ['25006', pgError('25006'), 'readOnly', false],
    ['23505', pgError('23505'), 'constraint', false],
    ['23503', pgError('23503'), 'constraint', false],
    ['42P01', pgError('42P01'), 'permanent', false],
    ['an application error', new Error('business rule'), 'permanent', false],
    ['a thrown string', 'oops', 'permanent', false],
    ['undefined', undefined, 'permanent', false],
  ];
  for (const [name, err, kind, transient] of cases) {
    it(`classifies ${name} as ${kind}${transient ? ' (transient)' : ''}`, () => {
      const c = classifyError(err);
      expect(c.kind).to.equal(kind);
      expect(c.transient).to.equal(transient);
      expect(isTransient(err)).to.equal(transient);
    });
  }

  it('reads the SQLSTATE of an objection-wrapped error from nativeError.code', () => {
    const wrapped = Object.assign(new Error('wrapped'), { nativeError: pgError('40001') });
    expect(classifyError(wrapped)).to.deep.equal({
      kind: 'serialization',
      transient: true,
      sqlState: '40001',
    });
  });

  it('reads the SQLSTATE from the cause chain', () => {
    const outer = new Error('outer', { cause: new Error('middle', { cause: pgError('40P01') }) });
    expect(sqlStateOf(outer)).to.equal('40P01');
    expect(classifyError(outer).kind).to.equal('deadlock');
  });

  it("classifies objection's UniqueViolationError as a constraint violation", () => {
    const err = new UniqueViolationError({
      nativeError: pgError('23505'),
      client: 'postgres',
      table: 't',
      columns: ['id'],
      constraint: 't_pkey',
    } as never);
    expect(classifyError(err).kind).to.equal('constraint');
  });

  it('judges a TransactionAbortedError by the swallowed error it carries', () => {
    expect(classifyError(new TransactionAbortedError('aborted', { cause: pgError('40001') })).transient).to.be
      .true;
    expect(classifyError(new TransactionAbortedError('aborted', { cause: pgError('23505') })).kind).to.equal(
      'constraint',
    );
    expect(classifyError(new TransactionAbortedError('aborted')).kind).to.equal('permanent');
  });

  it('keeps CommitUnknownError out of the transient kinds (only idempotent work may retry it)', () => {
    expect(classifyError(new CommitUnknownError('lost', { xid: '42' }))).to.deep.equal({
      kind: 'connection',
      transient: false,
    });
  });

  it('treats our own SerializationError and ConnectionError as transient', () => {
    expect(classifyError(new SerializationError('again', '40001')).kind).to.equal('serialization');
    expect(isTransient(new ConnectionError('lost'))).to.be.true;
  });

  it('does not loop on a cyclic cause chain', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(classifyError(a).kind).to.equal('permanent');
  });
});
