import { expect } from 'chai';
import {
  CircuitOpenError,
  CommitUnknownError,
  ConnectionError,
  DatabaseClosedError,
  NotFoundError,
  OptimisticLockError,
  PoolExhaustedError,
  SerializationError,
  TransactionTimeoutError,
  ValidationError,
} from '../../../src/db/errors/errors.js';
import { errorResponse } from '../../../src/http/error-handler.js';
import { ImportRowError, PreconditionRequiredError } from '../../../src/http/request-errors.js';

describe('errorResponse()', () => {
  it('maps each error class to its status and a stable code', () => {
    const cases: Array<[unknown, number, string]> = [
      [new NotFoundError({}), 404, 'NOT_FOUND'],
      [new OptimisticLockError('User', '1', 3), 412, 'VERSION_MISMATCH'],
      [new PreconditionRequiredError('If-Match is required.'), 428, 'PRECONDITION_REQUIRED'],
      [new ConnectionError('down'), 503, 'DATABASE_UNAVAILABLE'],
      [new PoolExhaustedError('full'), 503, 'DATABASE_UNAVAILABLE'],
      [new DatabaseClosedError('closing'), 503, 'DATABASE_UNAVAILABLE'],
      [new TransactionTimeoutError(100), 503, 'TIMEOUT'],
      [new SerializationError('conflict', '40001'), 503, 'CONTENTION'],
      [new CommitUnknownError('lost'), 500, 'COMMIT_UNKNOWN'],
      [
        Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
        503,
        'DATABASE_UNAVAILABLE',
      ],
      [new TypeError('bug'), 500, 'INTERNAL'],
      ['a string', 500, 'INTERNAL'],
      [
        Object.assign(new Error('too big'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 }),
        413,
        'BODY_TOO_LARGE',
      ],
      [
        Object.assign(new Error('media'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 }),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      ],
    ];
    for (const [err, status, code] of cases) {
      const res = errorResponse(err, 'r1');
      expect([res.statusCode, res.body.code], String(err)).to.deep.equal([status, code]);
      expect(res.body.requestId).to.equal('r1');
    }
  });

  it('sends Retry-After with every 503, from the breaker when it is open', () => {
    expect(errorResponse(new CircuitOpenError(4_200)).headers).to.deep.equal({ 'retry-after': '5' });
    expect(errorResponse(new CircuitOpenError(0)).headers).to.deep.equal({ 'retry-after': '1' });
    expect(errorResponse(new ConnectionError('down')).headers).to.deep.equal({ 'retry-after': '1' });
    expect(errorResponse(new NotFoundError({})).headers).to.deep.equal({});
  });

  it('never copies a database or internal error message into the response', () => {
    const leaky = Object.assign(
      new Error('syntax error at or near "select * from users where password = \'x\'"'),
      {
        code: '42601',
        stack: 'Error: at secret.ts:1',
      },
    );
    const res = errorResponse(leaky);
    expect(JSON.stringify(res)).not.to.match(/select|password|secret\.ts/);
    const down = errorResponse(
      new ConnectionError('connect ECONNREFUSED 10.0.0.5:5432 (user app, password hunter2)'),
    );
    expect(JSON.stringify(down)).not.to.match(/10\.0\.0\.5|hunter2/);
  });

  it('lists the fields of a model validation error, naming bulk rows by line', () => {
    const err = new ValidationError({
      type: 'ModelValidation',
      data: { 'rows[41].email': [{ message: 'must match format "email"', keyword: 'format', params: {} }] },
    });
    const res = errorResponse(Object.assign(err, { rowIndex: 41, line: 43 }));
    expect(res.statusCode).to.equal(400);
    expect(res.body).to.include({ code: 'VALIDATION', line: 43 });
    expect(res.body.message).to.match(/^Import row on line 43: /);
    expect(res.body.fields).to.deep.equal([{ field: 'body.email', message: 'must match format "email"' }]);
  });

  it('reports a malformed import row with its line', () => {
    const res = errorResponse(new ImportRowError(7, 'is not valid JSON'));
    expect(res.statusCode).to.equal(400);
    expect(res.body).to.include({
      code: 'IMPORT_ROW_INVALID',
      line: 7,
      message: 'Import row on line 7 is not valid JSON.',
    });
  });
});
