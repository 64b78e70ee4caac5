import { expect } from 'chai';
import { translateError } from '../../../../src/db/errors/translate-error.js';
import {
  CheckViolationError,
  ConnectionError,
  DBError,
  ForeignKeyViolationError,
  PoolExhaustedError,
  ReadOnlyTransactionError,
  SerializationError,
  StatementTimeoutError,
  TransactionTimeoutError,
  UniqueViolationError,
} from '../../../../src/db/errors/errors.js';

/** A pg DatabaseError's shape: db-errors recognises it by `code`, `table` and `internalQuery`. */
function pgError(code: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error('server said no'), {
    code,
    severity: 'ERROR',
    table: 'accounts',
    constraint: 'accounts_pkey',
    internalQuery: undefined,
    detail: 'Key (id)=(1) already exists.',
    ...extra,
  });
}

describe('translateError()', () => {
  it("turns 23505 into objection's UniqueViolationError with the driver error as cause", () => {
    const native = pgError('23505');
    const err = translateError(native);
    expect(err).to.be.instanceOf(UniqueViolationError);
    expect(err).to.have.property('table', 'accounts');
    expect((err as Error).cause).to.equal(native);
  });

  it('turns 23503 into ForeignKeyViolationError and 23514 into CheckViolationError', () => {
    expect(translateError(pgError('23503'))).to.be.instanceOf(ForeignKeyViolationError);
    expect(translateError(pgError('23514'))).to.be.instanceOf(CheckViolationError);
  });

  it('turns 40001 and 40P01 into SerializationError with the SQLSTATE and the attempts in the message', () => {
    const s = translateError(pgError('40001'), { attempts: 3 }) as SerializationError;
    expect(s).to.be.instanceOf(SerializationError);
    expect(s.sqlState).to.equal('40001');
    expect(s.message).to.contain('3 attempts');
    expect((translateError(pgError('40P01')) as SerializationError).sqlState).to.equal('40P01');
  });

  it('turns 25006 into ReadOnlyTransactionError and 57014 into StatementTimeoutError', () => {
    expect(translateError(pgError('25006'))).to.be.instanceOf(ReadOnlyTransactionError);
    expect(translateError(pgError('57014'))).to.be.instanceOf(StatementTimeoutError);
  });

  it('turns a lost connection into ConnectionError and an acquire timeout into PoolExhaustedError', () => {
    expect(translateError(new Error('Connection terminated unexpectedly'))).to.be.instanceOf(ConnectionError);
    const knexTimeout = Object.assign(new Error('Knex: Timeout acquiring a connection.'), {
      name: 'KnexTimeoutError',
    });
    expect(translateError(knexTimeout)).to.be.instanceOf(PoolExhaustedError);
  });

  it("turns other SQLSTATEs into objection's DBError", () => {
    expect(translateError(pgError('42P01'))).to.be.instanceOf(DBError);
  });

  it('returns application errors and our own errors unchanged', () => {
    const app = new Error('business rule');
    expect(translateError(app)).to.equal(app);
    const ours = new TransactionTimeoutError(10);
    expect(translateError(ours)).to.equal(ours);
    expect(translateError('a string')).to.equal('a string');
  });

  it('leaves an error objection already wrapped as it is', () => {
    const once = translateError(pgError('23505'));
    expect(translateError(once)).to.equal(once);
  });

  it('reads the SQLSTATE of an error knex prefixed with SQL', () => {
    const native = pgError('23505');
    native.message = 'insert into "accounts" ("id") values ($1) - duplicate key value';
    const err = translateError(native) as Error;
    expect(err).to.be.instanceOf(UniqueViolationError);
    expect(err.message).not.to.contain('(1)');
  });
});
