import { expect } from 'chai';
import type { Knex } from 'knex';
import { Readable } from 'node:stream';
import { AuditRepository } from '../../../src/audit/audit-repository.js';
import { TransactionStateError, UniqueViolationError } from '../../../src/db/errors/errors.js';
import { UserService } from '../../../src/users/user-service.js';
import { useUserRepository } from '../../support/user-fixture.js';

class Rollback extends Error {}

/** The service's writes run at repeatable read; a caller's transaction they join must too. */
const WRITE = { isolationLevel: 'repeatable read' } as const;

/** The audit rows of users, oldest first, without their ids and times (asserted apart). */
async function trail(knex: Knex): Promise<Array<Record<string, unknown>>> {
  return knex<Record<string, unknown>>('audit_log')
    .where({ entity: 'user' })
    .orderBy('id')
    .select('actor', 'action', 'entity_id', 'fields', 'row_count', 'request_id');
}

describe('UserService audit trail', () => {
  const fx = useUserRepository();
  let users: UserService;
  let audit: AuditRepository;
  let seq = 0;
  const email = (tag: string) => `${tag}-${Date.now()}-${seq++}@example.com`;

  before(() => {
    audit = new AuditRepository(fx.knex());
    users = new UserService({
      users: fx.repo(),
      tx: fx.database().txManager,
      breaker: { execute: (fn) => fn() },
      audit,
    });
  });
  beforeEach(async () => {
    // Append-only for everyone, the test's superuser included: clear it the way an operator would.
    await fx.knex().raw('alter table audit_log disable trigger user');
    await fx.knex().raw('delete from audit_log');
    await fx.knex().raw('alter table audit_log enable trigger user');
  });

  it('records create, update, delete and import with actor, request id and field names, never values', async () => {
    const ctx = { actor: 'client-1', requestId: 'req-1' };
    const created = await users.create({ email: email('ada'), name: 'Ada' }, ctx);
    const updated = await users.update(created.id, { name: 'Ada L.', status: 'suspended' }, 1, {
      ...ctx,
      requestId: 'req-2',
    });
    await users.remove(updated.id, { actor: 'ops-7', requestId: 'req-3' });
    const rows = Readable.from([
      { email: email('imp-a'), name: 'A' },
      { email: email('imp-b'), name: 'B' },
    ]);
    expect(await users.import(rows, { actor: 'ops-7', requestId: 'req-4' })).to.equal(2);
    expect(await trail(fx.knex())).to.deep.equal([
      {
        actor: 'client-1',
        action: 'create',
        entity_id: created.id,
        fields: ['email', 'name'],
        row_count: null,
        request_id: 'req-1',
      },
      {
        actor: 'client-1',
        action: 'update',
        entity_id: created.id,
        fields: ['name', 'status'],
        row_count: null,
        request_id: 'req-2',
      },
      {
        actor: 'ops-7',
        action: 'delete',
        entity_id: created.id,
        fields: [],
        row_count: null,
        request_id: 'req-3',
      },
      { actor: 'ops-7', action: 'import', entity_id: null, fields: [], row_count: 2, request_id: 'req-4' },
    ]);
    const text = JSON.stringify(await fx.knex()('audit_log').select('*'));
    expect(text).not.to.include('Ada L.');
    expect(text).not.to.include('example.com');
  });

  it('records an anonymous write (no context) with a null actor', async () => {
    const created = await users.create({ email: email('anon'), name: 'Anon' });
    const [record] = await audit.list('user', created.id);
    expect(record).to.include({ actor: null, action: 'create', entityId: created.id, requestId: null });
    expect(record?.occurredAt).to.be.instanceOf(Date);
  });

  it('writes no record for a write that fails (a duplicate email)', async () => {
    const taken = email('dup');
    await users.create({ email: taken, name: 'First' }, { actor: 'a' });
    const err = await users
      .create({ email: taken.toUpperCase(), name: 'Second' }, { actor: 'b' })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(UniqueViolationError);
    expect((await trail(fx.knex())).map((r) => r['actor'])).to.deep.equal(['a']);
  });

  it('rolls the record back with its write when a later statement of the transaction fails (a unique violation)', async () => {
    const first = email('rb');
    const err = await fx
      .database()
      .txManager.withTransaction(async () => {
        await users.create({ email: first, name: 'Recorded' }, { actor: 'client-1' }); // user + audit row written
        await users.create({ email: first, name: 'Duplicate' }, { actor: 'client-1' }); // 23505 after them
      }, WRITE)
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(UniqueViolationError);
    expect(await fx.repo().findByEmail(first)).to.equal(undefined);
    expect(await trail(fx.knex())).to.deep.equal([]);
  });

  it('rolls the write back with its record when the caller transaction rolls back after both', async () => {
    const address = email('outer');
    let inside: number | undefined;
    await fx
      .database()
      .txManager.withTransaction(async () => {
        await users.create({ email: address, name: 'Gone' }, { actor: 'client-1' });
        inside = (await audit.list('user')).length; // the ambient transaction sees its own record
        throw new Rollback();
      }, WRITE)
      .catch((e: unknown) => {
        if (!(e instanceof Rollback)) throw e;
      });
    expect(inside).to.equal(1);
    expect(await fx.repo().findByEmail(address)).to.equal(undefined);
    expect(await trail(fx.knex())).to.deep.equal([]);
  });

  it('fails the write when its record cannot be written: no change without its record', async () => {
    await fx.knex().raw(`
      create function refuse_audit() returns trigger language plpgsql as $$
      begin raise exception 'audit refused' using errcode = 'check_violation'; end $$`);
    await fx
      .knex()
      .raw(
        'create trigger refuse_audit before insert on audit_log for each row execute function refuse_audit()',
      );
    try {
      const address = email('unrecorded');
      const created = await users.create({ email: email('kept'), name: 'Kept' }).catch(() => undefined);
      expect(created).to.equal(undefined);
      const err = await users
        .create({ email: address, name: 'Unrecorded' }, { actor: 'x' })
        .catch((e: unknown) => e);
      expect(err).to.be.an('error');
      expect(await fx.repo().findByEmail(address)).to.equal(undefined);
      const [someone] = (await fx
        .knex()('users')
        .where({ status: 'active' })
        .orderBy('id')
        .limit(1)) as Array<{ id: string; version: number }>;
      await users
        .update(String(someone!.id), { name: 'Unchanged?' }, someone!.version)
        .catch(() => undefined);
      expect(((await fx.repo().getById(String(someone!.id))) as { name: string }).name).not.to.equal(
        'Unchanged?',
      );
    } finally {
      await fx.knex().raw('drop trigger refuse_audit on audit_log');
      await fx.knex().raw('drop function refuse_audit()');
    }
  });

  it('refuses a record outside a transaction', async () => {
    const err = await audit
      .record({ action: 'create', entity: 'user', entityId: '1' })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(TransactionStateError);
  });

  it('keeps the table append-only: update, delete and truncate fail with 42501 even for its owner', async () => {
    await users.create({ email: email('kept'), name: 'K' }, { actor: 'a' });
    for (const sql of [
      "update audit_log set actor = 'forged'",
      'delete from audit_log',
      'truncate audit_log',
    ]) {
      const err = (await fx
        .knex()
        .raw(sql)
        .catch((e: unknown) => e)) as { code?: string };
      expect(err.code, sql).to.equal('42501');
    }
    expect((await trail(fx.knex())).map((r) => r['actor'])).to.deep.equal(['a']);
  });
});
