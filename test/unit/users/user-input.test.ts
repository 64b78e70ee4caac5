import { expect } from 'chai';
import { ValidationError } from '../../../src/db/index.js';
import { validateNewUser, validatePatch } from '../../../src/users/user-input.js';

/** Object.prototype member names: objection's AjvValidator threw a TypeError on them. */
const PROTOTYPE_KEYS = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__'];

describe('user input validation (create, insertMany, copyIn, update)', () => {
  for (const key of PROTOTYPE_KEYS) {
    const input = (): unknown => JSON.parse(`{"email":"a@example.com","name":"A","${key}":"x"}`);

    it(`refuses "${key}" as an unknown field of a new user`, () => {
      expect(() => validateNewUser(input()))
        .to.throw(ValidationError)
        .with.property('data')
        .that.has.own.property(key);
    });

    it(`refuses "${key}" in a bulk-load row, naming the row`, () => {
      try {
        validateNewUser(input(), 7);
        expect.fail('accepted');
      } catch (err) {
        expect(err).to.be.instanceOf(ValidationError);
        expect(err).to.have.property('rowIndex', 7);
        expect(Object.keys((err as ValidationError).data as object)).to.deep.equal([`rows[7].${key}`]);
      }
    });

    it(`refuses "${key}" in a patch`, () => {
      expect(() => validatePatch(input())).to.throw(ValidationError);
    });
  }

  it('reports unknown fields together with the problems of the known ones', () => {
    const input: unknown = JSON.parse('{"email":"not-an-email","name":"A","constructor":1,"extra":2}');
    expect(() => validateNewUser(input))
      .to.throw(ValidationError)
      .with.property('data')
      .that.has.all.keys('email', 'constructor', 'extra');
  });
});
