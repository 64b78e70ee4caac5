import { expect } from 'chai';
import * as api from '../../src/index.js';

describe('public API (src/index.ts)', () => {
  it('exports every name ARCHITECTURE.md lists as the contract', () => {
    const contract = [
      'loadConfig',
      'ConfigError',
      'createLogger',
      'PostgresDatabase',
      'TxManager',
      'classifyError',
      'ConnectionError',
      'TransactionTimeoutError',
      'CommitUnknownError',
      'ReadOnlyTransactionError',
      'CircuitOpenError',
      'PoolExhaustedError',
      'OptimisticLockError',
      'UniqueViolationError',
      'ForeignKeyViolationError',
      'NotNullViolationError',
      'CheckViolationError',
      'ValidationError',
      'NotFoundError',
    ];
    const missing = contract.filter((name) => typeof (api as Record<string, unknown>)[name] !== 'function');
    expect(missing).to.deep.equal([]);
  });

  it('gives each error class of ours a stable code', () => {
    const codes = {
      ConnectionError: new api.ConnectionError('x').code,
      TransactionTimeoutError: new api.TransactionTimeoutError(1).code,
      CommitUnknownError: new api.CommitUnknownError('x').code,
      ReadOnlyTransactionError: new api.ReadOnlyTransactionError('x').code,
      CircuitOpenError: new api.CircuitOpenError(1).code,
      PoolExhaustedError: new api.PoolExhaustedError('x').code,
      OptimisticLockError: new api.OptimisticLockError('User', '1', 1).code,
      ConfigError: new api.ConfigError(['a: b']).code,
    };
    expect(codes).to.deep.equal({
      ConnectionError: 'CONNECTION_ERROR',
      TransactionTimeoutError: 'TRANSACTION_TIMEOUT',
      CommitUnknownError: 'COMMIT_UNKNOWN',
      ReadOnlyTransactionError: 'READ_ONLY_TRANSACTION',
      CircuitOpenError: 'CIRCUIT_OPEN',
      PoolExhaustedError: 'POOL_EXHAUSTED',
      OptimisticLockError: 'OPTIMISTIC_LOCK',
      ConfigError: 'CONFIG_ERROR',
    });
  });
});
