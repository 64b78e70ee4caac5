import { expect } from 'chai';
import { UniqueViolationError } from '../../../src/db/index.js';
import { uniqueFieldProblems } from '../../../src/http/field-problems.js';
import { costRatio } from '../../support/cost-ratio.js';

function violation(columns: string[]): InstanceType<typeof UniqueViolationError> {
  return new UniqueViolationError({
    nativeError: Object.assign(new Error('duplicate key'), { code: '23505' }),
    client: 'postgres',
    table: 'users',
    columns,
    constraint: 'users_email_key',
  } as never);
}

describe('uniqueFieldProblems()', () => {
  it('names the column of a plain or an expression index, camelCased', () => {
    expect(uniqueFieldProblems(violation(['email']))).to.deep.equal([
      { field: 'body.email', message: 'is already taken' },
    ]);
    expect(uniqueFieldProblems(violation(['lower(email)']))?.map((p) => p.field)).to.deep.equal([
      'body.email',
    ]);
    expect(uniqueFieldProblems(violation(['created_at']))?.map((p) => p.field)).to.deep.equal([
      'body.createdAt',
    ]);
    expect(uniqueFieldProblems(violation(['(1)']))).to.equal(undefined);
    expect(uniqueFieldProblems(violation([]))).to.equal(undefined);
  });

  it('costs a long identifier that ends in no identifier what one that does costs (linear scan)', async () => {
    const hostile = 'a'.repeat(20_000) + '!';
    const benign = 'a'.repeat(20_001);
    const ratio = await costRatio((c: string) => uniqueFieldProblems(violation([c])), hostile, benign);
    expect(ratio).to.be.below(10);
  });
});
