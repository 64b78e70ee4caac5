import { expect } from 'chai';
import { ValidationError } from '../../../src/db/errors/errors.js';
import type { UserStatus } from '../../../src/users/user-model.js';
import { snapshotUsers, useUserRepository } from '../../support/user-fixture.js';

/** Classic payloads; each must be stored or matched literally, or refused with a ValidationError. */
const PAYLOADS: readonly string[] = [
  "' OR 1=1 --",
  "'; DROP TABLE users; --",
  '"; DROP TABLE users; --',
  "admin'--",
  "' UNION SELECT id, email, name, status, version, created_at, updated_at, deleted_at FROM users --",
  '1; SELECT pg_sleep(10)',
  '\\x00',
  'nul\u0000byte',
  '\u2018 OR \u20181\u2019=\u20191',
  '\u02bc OR 1=1 --',
  '\uff07 OR 1=1 --',
  '%_\\%',
  '$1 $2 ?',
  '${name}',
  'x'.repeat(10_000),
  "'".repeat(5_000),
];

/** Fails the test for anything that is not a ValidationError (a SQL error above all). */
async function storedOrRefused<T>(promise: Promise<T>): Promise<T | ValidationError> {
  try {
    return await promise;
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw err;
  }
}

describe('UserRepository against SQL injection', () => {
  const fx = useUserRepository();
  let seeded: unknown[];

  before(async () => {
    seeded = await snapshotUsers(fx.knex());
  });

  afterEach(async () => {
    // Whatever happened, the seeded rows are untouched and the table still exists.
    const rows = await snapshotUsers(fx.knex());
    expect(rows.slice(0, seeded.length)).to.deep.equal(seeded);
  });

  it('stores each payload as a name literally, or refuses NUL with a ValidationError', async () => {
    for (const [i, payload] of PAYLOADS.entries()) {
      const result = await storedOrRefused(
        fx.repo().create({ email: `name${i}@example.com`, name: payload }),
      );
      if (result instanceof ValidationError) {
        expect(payload.length > 200 || payload.includes('\u0000'), payload.slice(0, 40)).to.equal(true);
        continue;
      }
      const stored: unknown = await fx.knex()('users').where('id', result.id).first('name');
      expect(stored).to.deep.equal({ name: payload });
    }
  });

  it('refuses each payload as an email with a ValidationError naming email', async () => {
    for (const payload of PAYLOADS) {
      const result = await storedOrRefused(fx.repo().create({ email: payload, name: 'Payload' }));
      expect(result, payload.slice(0, 40)).to.be.instanceOf(ValidationError);
      expect((result as ValidationError).data).to.have.property('email');
    }
  });

  it('stores a payload inside a valid email literally and finds it only by its exact text', async () => {
    const email = "o'brien'--@example.com";
    const user = await fx.repo().create({ email, name: 'OBrien' });
    expect((await fx.repo().findByEmail("O'BRIEN'--@EXAMPLE.COM"))?.id).to.equal(user.id);
    expect(await fx.repo().findByEmail("' OR 1=1 --")).to.equal(undefined);
  });

  it('matches each payload as a findByEmail filter literally (nothing found) or refuses NUL', async () => {
    for (const payload of PAYLOADS) {
      const result = await storedOrRefused(fx.repo().findByEmail(payload));
      if (payload.includes('\u0000')) expect(result).to.be.instanceOf(ValidationError);
      else expect(result, payload.slice(0, 40)).to.equal(undefined);
    }
  });

  it('refuses each payload as a status filter, a cursor, an id or a patch with a ValidationError or not-found', async () => {
    for (const payload of PAYLOADS) {
      const status = payload as UserStatus;
      expect(await storedOrRefused(fx.repo().list({ status }))).to.be.instanceOf(ValidationError);
      expect(await storedOrRefused(fx.repo().count({ status }))).to.be.instanceOf(ValidationError);
      expect(await storedOrRefused(fx.repo().list({ cursor: payload }))).to.be.instanceOf(ValidationError);
      expect(await fx.repo().findById(payload)).to.equal(undefined);
      const patched = await storedOrRefused(fx.repo().update('1', { status: status as 'active' }, 1));
      expect(patched).to.be.instanceOf(ValidationError);
    }
  });

  it('stores payloads through upsertByEmail, insertMany and copyIn literally', async () => {
    const names = PAYLOADS.filter((p) => p.length <= 200 && !p.includes('\u0000'));
    await fx.repo().upsertByEmail({ email: 'upsert-payload@example.com', name: names[0] ?? '' });
    await fx.repo().insertMany(names.map((name, i) => ({ email: `many${i}@example.com`, name })));
    await fx.repo().copyIn(names.map((name, i) => ({ email: `copy${i}@example.com`, name })));
    const stored = await fx
      .knex()('users')
      .where('email', 'like', 'copy%')
      .orWhere('email', 'like', 'many%')
      .orderBy('id')
      .pluck('name');
    expect(stored).to.deep.equal([...names, ...names]);
  });
});
