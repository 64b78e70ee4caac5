import { expect } from 'chai';
import { validateNewUser, validateNewUsers } from '../../../src/users/user-input.js';

/** What a validation answers: the valid row, or the error's class, message, data and rowIndex. */
function outcome(run: () => unknown): unknown {
  try {
    return { ok: run() };
  } catch (err) {
    const e = err as Error & { data?: unknown; rowIndex?: unknown };
    return { error: e.constructor.name, message: e.message, data: e.data, rowIndex: e.rowIndex };
  }
}

describe('validateNewUsers (the bulk path of insertMany)', () => {
  class Row {
    email = 'ada@example.com';
    name = 'Ada';
  }
  const inputs: unknown[] = [
    { email: 'ada@example.com', name: 'Ada' },
    { email: 'ada@example.com', name: 'Ada', status: 'suspended' },
    { email: 'not-an-email', name: 'Ada' },
    { email: 'ada@example.com', name: '' },
    { email: 'ada@example.com', name: 'A\u0000da' },
    { email: 'ada@example.com', name: 'Ada', status: 'deleted' },
    { email: 'ada@example.com', name: 'Ada', admin: true },
    { email: 'ada@example.com' },
    { email: 42, name: ['Ada'] },
    JSON.parse('{"email":"ada@example.com","name":"Ada","__proto__":{"x":1}}'),
    new Row(),
    null,
    [],
    'ada',
  ];

  it('answers every row exactly as validateNewUser(row, index) does: the same rows, the same errors', () => {
    for (const input of inputs) {
      const rows = [{ email: 'first@example.com', name: 'First' }, input];
      expect(
        outcome(() => validateNewUsers(rows)),
        JSON.stringify(input),
      ).to.deep.equal(outcome(() => [validateNewUser(rows[0], 0), validateNewUser(input, 1)]));
    }
  });

  it('copies only the three columns and fills the default status', () => {
    const row = { email: 'ada@example.com', name: 'Ada' };
    const [valid] = validateNewUsers([row]);
    expect(valid).to.deep.equal({ email: 'ada@example.com', name: 'Ada', status: 'active' });
    expect(valid).not.to.equal(row);
  });
});
