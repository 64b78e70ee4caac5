import { expect } from 'chai';
import { TxOptionsError } from '../../../../src/db/errors/errors.js';
import { joinConflicts, resolveTxOptions, type TxTraits } from '../../../../src/db/tx/tx-options.js';

describe('resolveTxOptions()', () => {
  it('means a plain BEGIN with the default retry when given nothing', () => {
    const o = resolveTxOptions(undefined);
    expect(o).to.include({
      isolationLevel: undefined,
      readOnly: false,
      deferrable: false,
      timeoutMs: undefined,
    });
    expect(o.propagation).to.equal('required');
    expect(o.retry).to.deep.equal({ maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 1000 });
  });

  it('takes retry defaults and the default timeout from the configuration', () => {
    const o = resolveTxOptions({}, { maxAttempts: 5, baseDelay: 10, maxDelay: 200, defaultTimeout: 1500 });
    expect(o.retry).to.deep.equal({ maxAttempts: 5, baseDelayMs: 10, maxDelayMs: 200 });
    expect(o.timeoutMs).to.equal(1500);
  });

  it('turns retry: false into a single attempt and timeoutMs: 0 into no deadline', () => {
    const o = resolveTxOptions(
      { retry: false, timeoutMs: 0 },
      { maxAttempts: 3, baseDelay: 20, maxDelay: 1000, defaultTimeout: 800 },
    );
    expect(o.retry.maxAttempts).to.equal(1);
    expect(o.timeoutMs).to.equal(undefined);
  });

  it('accepts deferrable with serializable read-only', () => {
    expect(resolveTxOptions({ isolationLevel: 'serializable', readOnly: true, deferrable: true }).deferrable)
      .to.be.true;
  });

  const invalid: Array<[string, unknown, RegExp]> = [
    ['an unknown isolation level', { isolationLevel: 'snapshot' }, /isolationLevel must be one of/],
    ['deferrable without serializable', { readOnly: true, deferrable: true }, /deferrable needs/],
    ['deferrable without readOnly', { isolationLevel: 'serializable', deferrable: true }, /deferrable needs/],
    ['a negative timeout', { timeoutMs: -1 }, /timeoutMs must be/],
    ['a non-finite timeout', { timeoutMs: Infinity }, /timeoutMs must be/],
    ['an unknown propagation', { propagation: 'mandatory' }, /propagation must be one of/],
    ['an unknown key (a typo)', { isolation: 'serializable' }, /unknown option "isolation"/],
    ['a fractional maxAttempts', { retry: { maxAttempts: 1.5 } }, /retry.maxAttempts/],
    [
      'maxDelayMs below baseDelayMs',
      { retry: { baseDelayMs: 100, maxDelayMs: 10 } },
      /maxDelayMs must be >=/,
    ],
    ['a non-boolean readOnly', { readOnly: 'yes' }, /readOnly must be a boolean/],
    ['a non-object', 'serializable', /must be an object/],
  ];
  for (const [name, opts, message] of invalid) {
    it(`throws TxOptionsError for ${name}`, () => {
      expect(() => resolveTxOptions(opts)).to.throw(TxOptionsError, message);
    });
  }

  it('reports every problem at once', () => {
    expect(() => resolveTxOptions({ isolationLevel: 'x', timeoutMs: -5 })).to.throw(
      TxOptionsError,
      /isolationLevel.*timeoutMs/,
    );
  });
});

describe('joinConflicts()', () => {
  const outer: TxTraits = {
    isolationLevel: 'read committed',
    readOnly: true,
    deferrable: false,
    deadline: 10_000,
  };

  it('finds nothing to object to when the caller asked for nothing', () => {
    expect(joinConflicts(outer, resolveTxOptions({}), 0)).to.deep.equal([]);
  });

  it('refuses serializable inside read committed and read-write inside read-only', () => {
    const conflicts = joinConflicts(
      outer,
      resolveTxOptions({ isolationLevel: 'serializable', readOnly: false }),
      0,
    );
    expect(conflicts).to.have.length(2);
  });

  it('allows read-only work inside a read-write transaction', () => {
    expect(
      joinConflicts({ ...outer, readOnly: false }, resolveTxOptions({ readOnly: true }), 0),
    ).to.deep.equal([]);
  });

  it('refuses a timeout tighter than the outer deadline, and any timeout when the outer has none', () => {
    expect(joinConflicts(outer, resolveTxOptions({ timeoutMs: 100 }), 0)).to.have.length(1);
    expect(joinConflicts(outer, resolveTxOptions({ timeoutMs: 20_000 }), 0)).to.deep.equal([]);
    expect(
      joinConflicts({ ...outer, deadline: undefined }, resolveTxOptions({ timeoutMs: 20_000 }), 0),
    ).to.have.length(1);
  });
});
