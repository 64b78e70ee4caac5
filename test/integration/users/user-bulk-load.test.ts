import { setImmediate } from 'node:timers/promises';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { CheckViolationError, UniqueViolationError, ValidationError } from '../../../src/db/errors/errors.js';
import type { NewUser } from '../../../src/users/user-input.js';
import { UserRepository } from '../../../src/users/user-repository.js';
import { useUserRepository } from '../../support/user-fixture.js';

const BULK = 100_000;
const MIDDLE = 50_000;

/** Rows `bulk-<tag>-<i>@example.com`, as a lazy async stream (nothing held in memory). */
async function* bulkRows(
  tag: string,
  count: number,
  replace?: (i: number) => unknown,
): AsyncGenerator<unknown> {
  for (let i = 0; i < count; i++) {
    // A real source (a file, a socket) yields to the event loop now and then.
    if (i % 10_000 === 0) await setImmediate();
    yield replace?.(i) ?? { email: `bulk-${tag}-${i}@example.com`, name: `Bulk ${i}` };
  }
}

function bulkArray(tag: string, count: number, replace?: (i: number) => unknown): NewUser[] {
  return Array.from(
    { length: count },
    (_, i) => (replace?.(i) ?? { email: `bulk-${tag}-${i}@example.com`, name: `Bulk ${i}` }) as NewUser,
  );
}

/** A fingerprint of the whole table: any inserted, changed or removed row changes it. */
async function fingerprint(knex: Knex): Promise<string> {
  const result = await knex.raw<{ rows: Array<{ n: string; digest: string | null }> }>(
    "select count(*) as n, md5(string_agg(concat_ws('|', id, email, name, status, version), ',' order by id)) as digest from users",
  );
  return JSON.stringify(result.rows[0]);
}

async function rejection(promise: Promise<unknown>): Promise<Error & { rowIndex?: number }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { rowIndex?: number };
  }
  throw new Error('expected a rejection');
}

describe('UserRepository bulk loads', () => {
  const fx = useUserRepository();

  describe('copyIn()', () => {
    it(`loads ${BULK.toLocaleString('en')} rows from an async stream and returns the count`, async () => {
      const before = await fx.repo().count();
      expect(await fx.repo().copyIn(bulkRows('copy', BULK))).to.equal(BULK);
      expect(await fx.repo().count()).to.equal(before + BULK);
      const sample = await fx.repo().findByEmail(`bulk-copy-${BULK - 1}@example.com`);
      expect(sample).to.include({ name: `Bulk ${BULK - 1}`, status: 'active', version: 1 });
    });

    it('leaves the table unchanged and names the row when a row in the middle is invalid', async () => {
      const before = await fingerprint(fx.knex());
      const err = await rejection(
        fx
          .repo()
          .copyIn(
            bulkRows('bad', BULK, (i) => (i === MIDDLE ? { email: 'broken', name: 'Bad' } : undefined)),
          ),
      );
      expect(err).to.be.instanceOf(ValidationError);
      expect(err.rowIndex).to.equal(MIDDLE);
      expect((err as ValidationError).data).to.have.all.keys(`rows[${MIDDLE}].email`);
      expect(await fingerprint(fx.knex())).to.equal(before);
    });

    it('leaves the table unchanged and names the row when a row duplicates an existing email', async () => {
      const before = await fingerprint(fx.knex());
      const err = await rejection(
        fx
          .repo()
          .copyIn(
            bulkRows('dup', BULK, (i) =>
              i === MIDDLE ? { email: 'ADA@example.com', name: 'Dup' } : undefined,
            ),
          ),
      );
      expect(err).to.be.instanceOf(UniqueViolationError);
      expect(err.rowIndex).to.equal(MIDDLE);
      expect(err.message).to.contain(`rows[${MIDDLE}]`).and.not.contain('ADA@example.com');
      expect(await fingerprint(fx.knex())).to.equal(before);
    });

    it('names the later row when two rows of the load share an email in different case', async () => {
      const err = await rejection(
        fx
          .repo()
          .copyIn(
            bulkArray('twin', 1_000, (i) =>
              i === 700 ? { email: 'BULK-twin-10@example.com', name: 'Twin' } : undefined,
            ),
          ),
      );
      expect(err).to.be.instanceOf(UniqueViolationError);
      expect(err.rowIndex).to.equal(700);
    });

    it('stores tabs, newlines, carriage returns and backslashes literally', async () => {
      const names = ['tab\there', 'line\nbreak', 'cr\rhere', 'back\\slash', '\\N', '\\.', 'end\\'];
      await fx.repo().copyIn(names.map((name, i) => ({ email: `esc${i}@example.com`, name })));
      const stored = await fx
        .knex()('users')
        .where('email', 'like', 'esc%@example.com')
        .orderBy('id')
        .pluck('name');
      expect(stored).to.deep.equal(names);
    });

    it('aborts and writes nothing when the source fails midway', async () => {
      const before = await fingerprint(fx.knex());
      async function* failing(): AsyncGenerator<NewUser> {
        yield* bulkArray('src', 5_000);
        await setImmediate();
        throw new Error('source broke');
      }
      const err = await rejection(fx.repo().copyIn(failing()));
      expect(err.message).to.equal('source broke');
      expect(await fingerprint(fx.knex())).to.equal(before);
    });

    it('leaves the connection usable after an aborted and after a server-rejected COPY', async () => {
      // One connection only: the next statements must run on the very connection that failed.
      const knex = knexFactory({ client: 'pg', connection: fx.testDb().url, pool: { min: 1, max: 1 } });
      try {
        const repo = new UserRepository(knex);
        const pid = async () =>
          (await knex.raw<{ rows: Array<{ pid: number }> }>('select pg_backend_pid() as pid')).rows[0]?.pid;
        const first = await pid();
        const before = await repo.count();
        const aborted = await rejection(
          repo.copyIn(bulkRows('one', 20_000, (i) => (i === 15_000 ? { name: '' } : undefined))),
        );
        expect(aborted).to.be.instanceOf(ValidationError);
        expect(aborted.rowIndex).to.equal(15_000);
        expect(await repo.count()).to.equal(before);
        const rejected = await rejection(
          repo.copyIn(
            bulkRows('two', 20_000, (i) =>
              i === 15_000 ? { email: 'ada@example.com', name: 'x' } : undefined,
            ),
          ),
        );
        expect(rejected).to.be.instanceOf(UniqueViolationError);
        expect(rejected.rowIndex).to.equal(15_000);
        expect(await repo.count()).to.equal(before);
        expect(await repo.copyIn([{ email: 'after-abort@example.com', name: 'Fine' }])).to.equal(1);
        expect(await pid()).to.equal(first);
        const status = await knex.raw<{ rows: Array<{ s: string }> }>(
          'select state as s from pg_stat_activity where pid = pg_backend_pid()',
        );
        expect(status.rows[0]?.s).to.equal('active');
      } finally {
        await knex.destroy();
      }
    });

    it('returns 0 for no rows and rejects something that is not iterable', async () => {
      expect(await fx.repo().copyIn([])).to.equal(0);
      expect(await fx.repo().copyIn(bulkRows('none', 0))).to.equal(0);
      const err = await rejection(fx.repo().copyIn(42 as unknown as NewUser[]));
      expect(err).to.be.instanceOf(ValidationError);
      expect((err as ValidationError).data).to.have.all.keys('rows');
    });

    it('maps a row the database CHECK rejects to CheckViolationError with its row index', async () => {
      // Bypasses model validation on purpose to prove the database is the last line.
      const err = await rejection(
        fx.knex().transaction(async (trx) => {
          await trx.raw("alter table users add constraint no_zed check (name <> 'zed')");
          await fx.repo().copyIn(
            bulkArray('chk', 100, (i) => (i === 42 ? { email: 'zed@example.com', name: 'zed' } : undefined)),
            trx,
          );
        }),
      );
      expect(err).to.be.instanceOf(CheckViolationError);
      expect(err.rowIndex).to.equal(42);
    });
  });

  describe('insertMany()', () => {
    it(`inserts ${BULK.toLocaleString('en')} rows in chunks and returns the count`, async () => {
      const before = await fx.repo().count();
      expect(await fx.repo().insertMany(bulkArray('many', BULK))).to.equal(BULK);
      expect(await fx.repo().count()).to.equal(before + BULK);
    });

    it('validates every row before writing and names the first invalid one', async () => {
      const before = await fingerprint(fx.knex());
      const rows = bulkArray('inv', BULK, (i) =>
        i === MIDDLE ? { email: 'x@example.com', name: 'n'.repeat(201) } : undefined,
      );
      const err = await rejection(fx.repo().insertMany(rows));
      expect(err).to.be.instanceOf(ValidationError);
      expect(err.rowIndex).to.equal(MIDDLE);
      expect((err as ValidationError).data).to.have.all.keys(`rows[${MIDDLE}].name`);
      expect(await fingerprint(fx.knex())).to.equal(before);
    });

    it('rolls back every chunk and names the row whose email is taken', async () => {
      const before = await fingerprint(fx.knex());
      const rows = bulkArray('taken', BULK, (i) =>
        i === MIDDLE ? { email: 'Grace@Example.com', name: 'Dup' } : undefined,
      );
      const err = await rejection(fx.repo().insertMany(rows));
      expect(err).to.be.instanceOf(UniqueViolationError);
      expect(err.rowIndex).to.equal(MIDDLE);
      expect(await fingerprint(fx.knex())).to.equal(before);
    });

    it('names the later row when two rows share an email, also within one chunk', async () => {
      const rows = bulkArray('pair', 3_000, (i) =>
        i === 1_500 ? { email: 'bulk-pair-1499@EXAMPLE.com', name: 'Twin' } : undefined,
      );
      const apart = await rejection(fx.repo().insertMany(rows));
      expect(apart).to.be.instanceOf(UniqueViolationError);
      expect(apart.rowIndex).to.equal(1_500);
      const exact = bulkArray('same', 10, (i) =>
        i === 9 ? { email: 'bulk-same-2@example.com', name: 'Twin' } : undefined,
      );
      const within = await rejection(fx.repo().insertMany(exact));
      expect(within).to.be.instanceOf(UniqueViolationError);
      expect(within.rowIndex).to.equal(9);
    });

    it('names the later row when its twin sits in an earlier chunk', async () => {
      const small = new UserRepository(fx.knex(), { insertChunkSize: 10 });
      const rows = bulkArray('chunks', 25, (i) =>
        i === 23 ? { email: 'bulk-chunks-3@example.com', name: 'Twin' } : undefined,
      );
      const before = await fingerprint(fx.knex());
      const err = await rejection(small.insertMany(rows));
      expect(err).to.be.instanceOf(UniqueViolationError);
      expect(err.rowIndex).to.equal(23);
      expect(await fingerprint(fx.knex())).to.equal(before);
      expect(await small.insertMany(bulkArray('chunks', 25))).to.equal(25);
    });

    it('refuses a chunk size that pg could not bind', () => {
      for (const insertChunkSize of [0, -1, 1.5, 20_001]) {
        expect(() => new UserRepository(fx.knex(), { insertChunkSize })).to.throw(RangeError);
      }
    });

    it('returns 0 for no rows and rejects a non-array', async () => {
      expect(await fx.repo().insertMany([])).to.equal(0);
      const err = await rejection(fx.repo().insertMany('rows' as unknown as NewUser[]));
      expect(err).to.be.instanceOf(ValidationError);
      expect((err as ValidationError).data).to.have.all.keys('rows');
    });
  });
});
