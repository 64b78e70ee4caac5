import { expect } from 'chai';
import { classifyError, classifyTxError, ERROR_KINDS } from '../../../../src/db/errors/classify-error.js';
import {
  CircuitOpenError,
  ConnectionError,
  ReadOnlyTransactionError,
  TransactionAbortedError,
} from '../../../../src/db/errors/errors.js';

/** A pg DatabaseError as the driver builds it (SQLSTATE in `code`). */
function pgError(code: string, message = 'server said no'): Error {
  return Object.assign(new Error(message), { code, severity: 'ERROR' });
}

/** objection's wrapping: the SQLSTATE sits on `nativeError`. */
function objectionError(code: string): Error {
  return Object.assign(new Error('wrapped'), { nativeError: pgError(code) });
}

const readWrite = { declaredReadOnly: false };
const readOnly = { declaredReadOnly: true };

describe('classifyTxError()', () => {
  it('lists failover among the error kinds', () => {
    expect(ERROR_KINDS).to.include('failover');
  });

  it('classifies a 25006 in a transaction not declared read-only as a transient failover', () => {
    expect(classifyTxError(pgError('25006'), readWrite)).to.deep.equal({
      kind: 'failover',
      transient: true,
      sqlState: '25006',
    });
  });

  it('finds the 25006 on objection nativeError and on a translated ReadOnlyTransactionError', () => {
    expect(classifyTxError(objectionError('25006'), readWrite).kind).to.equal('failover');
    const translated = new ReadOnlyTransactionError('read-only', { cause: pgError('25006') });
    expect(classifyTxError(translated, readWrite).kind).to.equal('failover');
  });

  it('classifies a swallowed 25006 behind a COMMIT answered ROLLBACK as a failover', () => {
    const aborted = new TransactionAbortedError('aborted', { cause: pgError('25006') });
    expect(classifyTxError(aborted, readWrite)).to.include({ kind: 'failover', transient: true });
  });

  it('keeps a 25006 in a transaction declared read-only as readOnly, not retried', () => {
    expect(classifyTxError(pgError('25006'), readOnly)).to.deep.equal({
      kind: 'readOnly',
      transient: false,
      sqlState: '25006',
    });
  });

  it('classifies 57P03 as a transient failover whatever the transaction declared', () => {
    for (const ctx of [readWrite, readOnly]) {
      expect(classifyTxError(pgError('57P03'), ctx)).to.deep.equal({
        kind: 'failover',
        transient: true,
        sqlState: '57P03',
      });
    }
  });

  it('classifies 57P03 behind a failed connect (ConnectionError with the driver error as cause) as a failover', () => {
    const err = new ConnectionError('Could not open a database connection.', { cause: pgError('57P03') });
    expect(classifyTxError(err, readWrite)).to.include({ kind: 'failover', sqlState: '57P03' });
  });

  it('keeps a CircuitOpenError caused by a 57P03 non-transient', () => {
    const err = new CircuitOpenError(1_000, { cause: pgError('57P03') });
    expect(classifyTxError(err, readWrite)).to.include({ kind: 'connection', transient: false });
  });

  it('leaves a ReadOnlyTransactionError without a SQLSTATE as readOnly', () => {
    expect(classifyTxError(new ReadOnlyTransactionError('no'), readWrite)).to.deep.equal({
      kind: 'readOnly',
      transient: false,
    });
  });

  it('agrees with classifyError on every other failure', () => {
    for (const err of [
      pgError('40001'),
      pgError('40P01'),
      pgError('57P01'),
      pgError('08006'),
      pgError('23505'),
      pgError('57014'),
      new Error('application error'),
    ]) {
      expect(classifyTxError(err, readWrite)).to.deep.equal(classifyError(err));
      expect(classifyTxError(err, readOnly)).to.deep.equal(classifyError(err));
    }
  });

  it('leaves classifyError context-free: 25006 stays readOnly and 57P03 connection', () => {
    expect(classifyError(pgError('25006'))).to.include({ kind: 'readOnly', transient: false });
    expect(classifyError(pgError('57P03'))).to.include({ kind: 'connection', transient: true });
  });
});
