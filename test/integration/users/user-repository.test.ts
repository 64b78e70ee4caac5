import { expect } from 'chai';
import {
  NotFoundError,
  OptimisticLockError,
  UniqueViolationError,
  ValidationError,
} from '../../../src/db/errors/errors.js';
import { User } from '../../../src/users/user-model.js';
import { TEST_USERS } from '../../../seeds/test/001_users.js';
import { snapshotUsers, useUserRepository } from '../../support/user-fixture.js';

/** Awaits `promise` and returns what it rejected with; fails the test if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('UserRepository', () => {
  const fx = useUserRepository();

  describe('the test seed', () => {
    it('is present in every suite database with fixed ids (checked before any test writes)', async () => {
      const rows = await fx
        .knex()('users')
        .select('id', 'email', 'name', 'status')
        .whereIn('id', ['1', '2', '3', '4', '5']);
      expect(rows.sort((a: { id: string }, b: { id: string }) => Number(a.id) - Number(b.id))).to.deep.equal(
        TEST_USERS.map((u) => ({ ...u })),
      );
    });
  });

  describe('create()', () => {
    it('inserts a user with status active, version 1 and both timestamps set', async () => {
      const user = await fx.repo().create({ email: 'Linus@Example.com', name: 'Linus' });
      expect(user).to.be.instanceOf(User);
      expect(user.id)
        .to.be.a('string')
        .and.match(/^[1-9][0-9]*$/);
      expect(user).to.include({ email: 'Linus@Example.com', name: 'Linus', status: 'active', version: 1 });
      expect(user.createdAt).to.be.instanceOf(Date);
      expect(user.updatedAt).to.be.instanceOf(Date);
      expect(user.deletedAt).to.equal(null);
    });

    it('keeps deletedAt out of toJSON and shows the id as a string', async () => {
      const user = await fx.repo().create({ email: 'json@example.com', name: 'Jay', status: 'suspended' });
      const json = user.toJSON();
      expect(json).to.have.all.keys('id', 'email', 'name', 'status', 'version', 'createdAt', 'updatedAt');
      expect(json.id).to.be.a('string');
    });

    it('rejects an invalid email, an empty name and an unknown status with a ValidationError naming each field', async () => {
      const err = await rejection(
        fx.repo().create({ email: 'not-an-email', name: '', status: 'gone' as 'active' }),
      );
      expect(err).to.be.instanceOf(ValidationError);
      expect((err as ValidationError).data).to.have.all.keys('email', 'name', 'status');
    });

    it('rejects a 201-character name and accepts a 200-character one', async () => {
      const err = await rejection(fx.repo().create({ email: 'long@example.com', name: 'x'.repeat(201) }));
      expect(err).to.be.instanceOf(ValidationError);
      expect((err as ValidationError).data).to.have.all.keys('name');
      const user = await fx.repo().create({ email: 'long@example.com', name: 'x'.repeat(200) });
      expect(user.name).to.have.length(200);
    });

    it('counts name length in characters, so 200 emoji fit', async () => {
      const user = await fx.repo().create({ email: 'emoji@example.com', name: '😀'.repeat(200) });
      expect([...user.name]).to.have.length(200);
    });

    it('rejects status deleted (only softDelete sets it) and unknown properties', async () => {
      const err = await rejection(
        fx.repo().create({ email: 'x@example.com', name: 'X', status: 'deleted', id: '9' } as never),
      );
      expect(err).to.be.instanceOf(ValidationError);
      expect((err as ValidationError).data).to.have.all.keys('status', 'id');
    });

    it('rejects a NUL character with a ValidationError instead of a server error', async () => {
      const err = await rejection(fx.repo().create({ email: 'nul@example.com', name: 'a\u0000b' }));
      expect(err).to.be.instanceOf(ValidationError);
      expect((err as ValidationError).data).to.have.all.keys('name');
    });

    it('throws UniqueViolationError for an email taken in another letter case, and writes nothing', async () => {
      const before = await snapshotUsers(fx.knex());
      const err = await rejection(fx.repo().create({ email: 'ADA@example.COM', name: 'Impostor' }));
      expect(err).to.be.instanceOf(UniqueViolationError);
      expect((err as InstanceType<typeof UniqueViolationError>).constraint).to.equal('users_email_lower_key');
      expect(await snapshotUsers(fx.knex())).to.deep.equal(before);
    });
  });

  describe('getById() and findById()', () => {
    it('returns a seeded user by its string id', async () => {
      const ada = await fx.repo().getById('1');
      expect(ada).to.include({ id: '1', email: 'ada@example.com', name: 'Ada Lovelace', status: 'active' });
      expect((await fx.repo().findById('2'))?.email).to.equal('grace@example.com');
    });

    it('treats a missing, soft-deleted or malformed id as not found', async () => {
      for (const id of ['999999', '4', 'abc', '1.5', '-1', '01', '', '9223372036854775808']) {
        expect(await fx.repo().findById(id), id).to.equal(undefined);
        expect(await rejection(fx.repo().getById(id)), id).to.be.instanceOf(NotFoundError);
      }
    });

    it('reads ids beyond 2^53 without losing precision', async () => {
      const big = '9007199254740993';
      await fx
        .knex()
        .raw('insert into users (id, email, name) overriding system value values (?, ?, ?)', [
          big,
          'big@example.com',
          'Big',
        ]);
      expect((await fx.repo().getById(big)).id).to.equal(big);
      expect((await fx.repo().findByEmail('big@example.com'))?.id).to.equal(big);
    });
  });

  describe('findByEmail()', () => {
    it('finds a user whatever the letter case of the query', async () => {
      expect((await fx.repo().findByEmail('GRACE@EXAMPLE.COM'))?.id).to.equal('2');
      expect((await fx.repo().findByEmail('grace@example.com'))?.id).to.equal('2');
    });

    it('returns undefined for an unknown or soft-deleted email', async () => {
      expect(await fx.repo().findByEmail('nobody@example.com')).to.equal(undefined);
      expect(await fx.repo().findByEmail('edsger@example.com')).to.equal(undefined);
    });
  });

  describe('update()', () => {
    it('applies the patch, bumps the version and moves updatedAt', async () => {
      const user = await fx.repo().create({ email: 'upd@example.com', name: 'Before' });
      const updated = await fx.repo().update(user.id, { name: 'After', status: 'suspended' }, user.version);
      expect(updated).to.include({ id: user.id, name: 'After', status: 'suspended', version: 2 });
      // JavaScript dates hold milliseconds, and a fast machine creates and updates within one:
      // compare the stored timestamps at the server's microsecond precision.
      const { rows } = await fx
        .knex()
        .raw<{ rows: Array<{ moved: boolean }> }>(
          'select updated_at > created_at as moved from users where id = ?',
          [user.id],
        );
      expect(rows[0]?.moved, 'updated_at later than created_at').to.equal(true);
      expect(user.updatedAt.getTime()).to.equal(user.createdAt.getTime());
      expect(updated.updatedAt.getTime()).to.be.at.least(user.updatedAt.getTime());
      expect(updated.createdAt.getTime()).to.equal(user.createdAt.getTime());
    });

    it('throws OptimisticLockError for a stale version and writes nothing', async () => {
      const user = await fx.repo().create({ email: 'stale@example.com', name: 'One' });
      await fx.repo().update(user.id, { name: 'Two' }, 1);
      const before = await snapshotUsers(fx.knex());
      const err = await rejection(fx.repo().update(user.id, { name: 'Three' }, 1));
      expect(err).to.be.instanceOf(OptimisticLockError);
      expect(err).to.include({ code: 'OPTIMISTIC_LOCK', id: user.id, expectedVersion: 1 });
      expect(await snapshotUsers(fx.knex())).to.deep.equal(before);
    });

    it('throws NotFoundError for a missing or soft-deleted user', async () => {
      expect(await rejection(fx.repo().update('999999', { name: 'X' }, 1))).to.be.instanceOf(NotFoundError);
      expect(await rejection(fx.repo().update('4', { name: 'X' }, 1))).to.be.instanceOf(NotFoundError);
    });

    it('validates the patch and the expected version before touching the database', async () => {
      const before = await snapshotUsers(fx.knex());
      const bad = await rejection(fx.repo().update('1', { email: 'nope', name: '' }, 1));
      expect(bad).to.be.instanceOf(ValidationError);
      expect((bad as ValidationError).data).to.have.all.keys('email', 'name');
      const empty = await rejection(fx.repo().update('1', {}, 1));
      expect(empty).to.be.instanceOf(ValidationError);
      expect((empty as ValidationError).data).to.have.all.keys('patch');
      const version = await rejection(fx.repo().update('1', { name: 'Y' }, 0));
      expect(version).to.be.instanceOf(ValidationError);
      expect((version as ValidationError).data).to.have.all.keys('expectedVersion');
      const deleted = await rejection(fx.repo().update('1', { status: 'deleted' as 'active' }, 1));
      expect(deleted).to.be.instanceOf(ValidationError);
      expect((deleted as ValidationError).data).to.have.all.keys('status');
      expect(await snapshotUsers(fx.knex())).to.deep.equal(before);
    });

    it('throws UniqueViolationError when the new email is taken in another case', async () => {
      const user = await fx.repo().create({ email: 'mover@example.com', name: 'Mover' });
      const err = await rejection(fx.repo().update(user.id, { email: 'Grace@Example.com' }, user.version));
      expect(err).to.be.instanceOf(UniqueViolationError);
    });
  });

  describe('softDelete() and restore()', () => {
    it('hides a soft-deleted user from reads and brings it back as active', async () => {
      const user = await fx.repo().create({ email: 'gone@example.com', name: 'Gone', status: 'suspended' });
      const deleted = await fx.repo().softDelete(user.id);
      expect(deleted).to.include({ status: 'deleted', version: 2 });
      expect(deleted.deletedAt).to.be.instanceOf(Date);
      expect(await fx.repo().findById(user.id)).to.equal(undefined);
      expect(await fx.repo().findByEmail('gone@example.com')).to.equal(undefined);
      const restored = await fx.repo().restore(user.id);
      expect(restored).to.include({ status: 'active', version: 3, deletedAt: null });
      expect((await fx.repo().getById(user.id)).status).to.equal('active');
    });

    it('throws NotFoundError when deleting twice or restoring a live user', async () => {
      const user = await fx.repo().create({ email: 'twice@example.com', name: 'Twice' });
      await fx.repo().softDelete(user.id);
      expect(await rejection(fx.repo().softDelete(user.id))).to.be.instanceOf(NotFoundError);
      expect(await rejection(fx.repo().restore('1'))).to.be.instanceOf(NotFoundError);
      expect(await rejection(fx.repo().restore('nope'))).to.be.instanceOf(NotFoundError);
    });

    it('keeps a soft-deleted email reserved', async () => {
      const err = await rejection(fx.repo().create({ email: 'Edsger@example.com', name: 'E' }));
      expect(err).to.be.instanceOf(UniqueViolationError);
    });
  });

  describe('count()', () => {
    it('counts live users, or users with one status', async () => {
      const rows = await fx.knex()('users').select('status');
      const live = rows.filter((r: { status: string }) => r.status !== 'deleted').length;
      expect(await fx.repo().count()).to.equal(live);
      expect(await fx.repo().count({ status: 'deleted' })).to.equal(
        rows.filter((r: { status: string }) => r.status === 'deleted').length,
      );
    });

    it('rejects an unknown status with a ValidationError', async () => {
      const err = await rejection(fx.repo().count({ status: "active' or '1'='1" as 'active' }));
      expect(err).to.be.instanceOf(ValidationError);
      expect((err as ValidationError).data).to.have.all.keys('status');
    });
  });

  describe('upsertByEmail()', () => {
    it('inserts a new user and reports created', async () => {
      const { user, created } = await fx.repo().upsertByEmail({ email: 'up@example.com', name: 'Up' });
      expect(created).to.equal(true);
      expect(user).to.include({ email: 'up@example.com', name: 'Up', status: 'active', version: 1 });
    });

    it('updates the name of the user with that email in any case, keeping email spelling and status', async () => {
      const { user, created } = await fx
        .repo()
        .upsertByEmail({ email: 'ALAN@example.com', name: 'A. M. Turing' });
      expect(created).to.equal(false);
      expect(user).to.include({
        id: '3',
        email: 'alan@example.com',
        name: 'A. M. Turing',
        status: 'suspended',
      });
      expect(user.version).to.equal(2);
    });

    it('restores a soft-deleted user when a status is given', async () => {
      const { user, created } = await fx.repo().upsertByEmail({
        email: 'edsger@example.com',
        name: 'EWD',
        status: 'active',
      });
      expect(created).to.equal(false);
      expect(user).to.include({ id: '4', status: 'active', deletedAt: null });
    });

    it('validates its input', async () => {
      const err = await rejection(fx.repo().upsertByEmail({ email: "' OR 1=1 --", name: 'x' }));
      expect(err).to.be.instanceOf(ValidationError);
      expect((err as ValidationError).data).to.have.all.keys('email');
    });
  });
});
