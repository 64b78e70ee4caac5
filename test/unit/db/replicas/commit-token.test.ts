import { expect } from 'chai';
import { isCommitToken, lsnText, lsnValue } from '../../../../src/db/replicas/commit-token.js';
import { resolveTxOptions } from '../../../../src/db/tx/tx-options.js';
import { TxOptionsError } from '../../../../src/db/errors/errors.js';

describe('commit tokens (WAL positions)', () => {
  it('orders positions across the 32-bit boundary and round-trips their text', () => {
    expect(lsnValue('1/0')! > lsnValue('0/FFFFFFFF')!).to.equal(true);
    expect(lsnText(lsnValue('16/B374D848')!)).to.equal('16/B374D848');
    expect(lsnValue(null)).to.equal(undefined);
    expect(isCommitToken('0/16B3748')).to.equal(true);
    expect(isCommitToken('0/16B3748; drop table x')).to.equal(false);
  });

  describe('TxOptions target and after', () => {
    it('accepts them on a read-only transaction', () => {
      const o = resolveTxOptions({ readOnly: true, target: 'replica', after: '0/10' });
      expect(o.target).to.equal('replica');
      expect(o.after).to.equal(16n);
      expect(resolveTxOptions({}).target).to.equal('primary');
    });

    it('refuses them on a read-write transaction, an unknown target and a malformed token, all at once', () => {
      expect(() => resolveTxOptions({ target: 'replica', after: 'soon' }))
        .to.throw(TxOptionsError)
        .with.property('message')
        .that.includes('target is for read-only transactions only')
        .and.includes('after must be a commit token')
        .and.includes('after is for read-only transactions only');
      expect(() => resolveTxOptions({ readOnly: true, target: 'standby' })).to.throw(
        TxOptionsError,
        'target must be one of primary, replica',
      );
    });
  });
});
