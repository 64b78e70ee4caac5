import { expect } from 'chai';
import { ValidationError } from '../../../src/db/errors/errors.js';
import { UserRepository, type ListUsersOptions } from '../../../src/users/user-repository.js';
import type { User } from '../../../src/users/user-model.js';
import { useUserRepository } from '../../support/user-fixture.js';

async function validationError(promise: Promise<unknown>): Promise<ValidationError> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

/** Every page of a list, following nextCursor. */
async function allPages(repo: UserRepository, opts: ListUsersOptions): Promise<User[][]> {
  const pages: User[][] = [];
  let cursor: string | undefined;
  do {
    const page = await repo.list({ ...opts, ...(cursor ? { cursor } : {}) });
    pages.push(page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return pages;
}

describe('UserRepository.list()', () => {
  const fx = useUserRepository();

  before(async () => {
    // 5 seeded users + 45 more: every 5th suspended.
    await fx.repo().insertMany(
      Array.from({ length: 45 }, (_, i) => ({
        email: `list${i}@example.com`,
        name: `List ${i}`,
        status: i % 5 === 0 ? ('suspended' as const) : ('active' as const),
      })),
    );
  });

  it('returns 20 users by default, oldest id first, with a cursor for the next page', async () => {
    const page = await fx.repo().list();
    expect(page.items).to.have.length(20);
    const ids = page.items.map((u) => BigInt(u.id));
    expect(ids).to.deep.equal([...ids].sort((a, b) => (a < b ? -1 : 1)));
    expect(page.nextCursor).to.be.a('string');
  });

  it('walks every live user exactly once across pages, and the last page has no cursor', async () => {
    const pages = await allPages(fx.repo(), { limit: 7 });
    const ids = pages.flat().map((u) => u.id);
    expect(new Set(ids).size).to.equal(ids.length);
    expect(ids).to.have.length(await fx.repo().count());
    expect(ids).not.to.include('4'); // soft-deleted
    expect(pages.slice(0, -1).every((p) => p.length === 7)).to.equal(true);
  });

  it('filters by status and pages within the filter', async () => {
    const pages = await allPages(fx.repo(), { status: 'suspended', limit: 4 });
    const users = pages.flat();
    expect(users.every((u) => u.status === 'suspended')).to.equal(true);
    expect(users).to.have.length(await fx.repo().count({ status: 'suspended' }));
    const deleted = await fx.repo().list({ status: 'deleted' });
    expect(deleted.items.map((u) => u.id)).to.deep.equal(['4']);
  });

  it('pages newest first with order desc', async () => {
    const pages = await allPages(fx.repo(), { order: 'desc', limit: 10 });
    const ids = pages.flat().map((u) => BigInt(u.id));
    expect(ids).to.deep.equal([...ids].sort((a, b) => (a > b ? -1 : 1)));
  });

  it('does not skip or repeat rows when users are inserted between pages', async () => {
    const first = await fx.repo().list({ limit: 10 });
    await fx.repo().create({ email: 'late@example.com', name: 'Late' });
    const second = await fx.repo().list({ limit: 10, cursor: first.nextCursor ?? '' });
    const lastOfFirst = BigInt(first.items.at(-1)?.id ?? '0');
    expect(BigInt(second.items[0]?.id ?? '0') > lastOfFirst).to.equal(true);
  });

  it('accepts limits 1 and 100 and rejects 0, 101, fractions and non-numbers', async () => {
    expect((await fx.repo().list({ limit: 1 })).items).to.have.length(1);
    expect((await fx.repo().list({ limit: 100 })).nextCursor).to.equal(null);
    for (const limit of [0, 101, 2.5, Number.NaN, '10' as unknown as number]) {
      expect((await validationError(fx.repo().list({ limit }))).data).to.have.all.keys('limit');
    }
  });

  it('rejects a sort direction outside asc/desc instead of silently sorting ascending', async () => {
    const err = await validationError(fx.repo().list({ order: 'sideways' as 'asc' }));
    expect(err.data).to.have.all.keys('order');
  });

  it('rejects an unknown status', async () => {
    const err = await validationError(fx.repo().list({ status: 'pending' as 'active' }));
    expect(err.data).to.have.all.keys('status');
  });

  describe('cursors', () => {
    let cursor: string;
    before(async () => {
      cursor = (await fx.repo().list({ limit: 3 })).nextCursor ?? '';
    });

    const tampered: Array<[string, (c: string) => string]> = [
      ['garbage', () => 'not a cursor'],
      ['empty', () => ''],
      ['truncated', (c) => c.slice(0, -3)],
      ['a flipped character', (c) => (c[0] === 'A' ? 'B' : 'A') + c.slice(1)],
      ['valid JSON with a SQL payload as id', () => b64({ v: 1, id: '1 OR 1=1', s: null, o: 'asc' })],
      ['an id beyond bigint', () => b64({ v: 1, id: '99999999999999999999', s: null, o: 'asc' })],
      ['an unknown version', () => b64({ v: 2, id: '3', s: null, o: 'asc' })],
      ['an extra key', () => b64({ v: 1, id: '3', s: null, o: 'asc', x: 1 })],
      ['an unknown order', () => b64({ v: 1, id: '3', s: null, o: 'asc; drop table users' })],
      ['JSON that is not an object', () => Buffer.from('[1,2]').toString('base64url')],
      ['a huge string', () => 'A'.repeat(100_000)],
      ['a signature when none is configured', (c) => `${c}.${'A'.repeat(43)}`],
    ];
    for (const [what, make] of tampered) {
      it(`rejects a cursor with ${what} with a ValidationError on cursor`, async () => {
        const err = await validationError(fx.repo().list({ limit: 3, cursor: make(cursor) }));
        expect(err.data).to.have.all.keys('cursor');
      });
    }

    it('rejects a cursor used with another status filter or order', async () => {
      expect((await validationError(fx.repo().list({ cursor, status: 'active' }))).data).to.have.all.keys(
        'cursor',
      );
      expect((await validationError(fx.repo().list({ cursor, order: 'desc' }))).data).to.have.all.keys(
        'cursor',
      );
    });

    it('accepts a hand-made well-formed cursor (positions are not secret without a cursorSecret)', async () => {
      const page = await fx.repo().list({ limit: 2, cursor: b64({ v: 1, id: '2', s: null, o: 'asc' }) });
      expect(page.items.map((u) => u.id)).to.deep.equal(['3', '5']);
    });

    it('detects any edit of a signed cursor when a cursorSecret is set', async () => {
      const signed = new UserRepository(fx.knex(), { cursorSecret: 'cursor-key' });
      const first = await signed.list({ limit: 2 });
      const next = first.nextCursor ?? '';
      expect(next).to.contain('.');
      expect((await signed.list({ limit: 2, cursor: next })).items).to.have.length(2);
      const [body = '', mac = ''] = next.split('.');
      const forgedBody = b64({ v: 1, id: '1', s: null, o: 'asc' });
      for (const bad of [body, `${forgedBody}.${mac}`, `${body}.${mac.slice(0, -1)}A`]) {
        expect((await validationError(signed.list({ limit: 2, cursor: bad }))).data).to.have.all.keys(
          'cursor',
        );
      }
      const otherKey = new UserRepository(fx.knex(), { cursorSecret: 'another-key' });
      expect((await validationError(otherKey.list({ limit: 2, cursor: next }))).data).to.have.all.keys(
        'cursor',
      );
    });
  });
});

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}
