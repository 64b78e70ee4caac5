import { expect } from 'chai';
import sinon from 'sinon';
import type { TxManager } from '../../../src/db/tx/tx-manager.js';
import { ConnectionError, NotFoundError, StatementTimeoutError } from '../../../src/db/errors/errors.js';
import { ValidationError } from '../../../src/db/index.js';
import type { User } from '../../../src/users/user-model.js';
import type { UserRepository } from '../../../src/users/user-repository.js';
import { UserService } from '../../../src/users/user-service.js';
import { captureLogger, WARN } from '../../support/capture-logger.js';

const ADA = { id: '1', email: 'ada@example.com', version: 1 } as User;

/** A server error as pg raises it: a message and a SQLSTATE. */
function pgError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('UserService', () => {
  const sandbox = sinon.createSandbox();
  afterEach(() => sandbox.restore());

  /** A service over stubs: a pass-through breaker and a TxManager whose transactions only count. */
  function service(
    repo: Partial<UserRepository>,
    opts: { inTransaction?: boolean; defaultTimeout?: number } = {},
  ) {
    const tx = {
      current: sandbox.stub().returns(opts.inTransaction ? {} : undefined),
      withReadOnlyTransaction: sandbox.stub().callsFake((fn: () => Promise<unknown>) => fn()),
      withTransaction: sandbox.stub().callsFake((fn: () => Promise<unknown>) => fn()),
    };
    const breaker = { execute: sandbox.stub().callsFake((fn: () => Promise<unknown>) => fn()) };
    const log = captureLogger();
    const users = new UserService({
      users: repo as UserRepository,
      tx: tx as unknown as TxManager,
      breaker,
      transactions: { maxAttempts: 3, baseDelay: 1, maxDelay: 2, defaultTimeout: opts.defaultTimeout ?? 0 },
      logger: log.logger,
    });
    return { users, tx, breaker, log };
  }

  describe('get() and list()', () => {
    it('run their one statement through the breaker without a transaction', async () => {
      const getById = sandbox.stub().resolves(ADA);
      const list = sandbox.stub().resolves({ items: [ADA], nextCursor: null });
      const { users, tx, breaker } = service({ getById, list });
      expect(await users.get('1')).to.equal(ADA);
      expect((await users.list({ limit: 1 })).items).to.deep.equal([ADA]);
      expect(breaker.execute.callCount).to.equal(2);
      expect(tx.withReadOnlyTransaction.called).to.equal(false);
      expect(tx.withTransaction.called).to.equal(false);
    });

    it('list() refuses status "deleted" (a deleted user is gone for the API) without reading', async () => {
      const list = sandbox.stub().resolves({ items: [], nextCursor: null });
      const { users } = service({ list });
      const err = await users.list({ status: 'deleted' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(ValidationError);
      expect((err as ValidationError).message).to.match(/must be one of active, suspended/);
      expect(list.called).to.equal(false);
    });

    it('retry a transient failure (a lost connection) and log one warning per retry', async () => {
      const lost = pgError('terminating connection due to administrator command', '57P01');
      const getById = sandbox.stub().onFirstCall().rejects(lost).onSecondCall().resolves(ADA);
      const { users, log } = service({ getById });
      expect(await users.get('1')).to.equal(ADA);
      expect(getById.callCount).to.equal(2);
      const warnings = log.lines.filter((l) => l.level === WARN);
      expect(warnings.map((l) => l.msg)).to.deep.equal(['read failed transiently; retrying']);
      expect(warnings[0]).to.include({ attempt: 1 });
    });

    it('give up after maxAttempts with the typed error', async () => {
      const getById = sandbox.stub().rejects(pgError('connection reset', '08006'));
      const { users } = service({ getById });
      const err = await users.get('1').catch((e: unknown) => e);
      expect(err).to.be.instanceOf(ConnectionError);
      expect(getById.callCount).to.equal(3);
    });

    it('translate a statement_timeout cancel to StatementTimeoutError at once, without retry', async () => {
      const getById = sandbox
        .stub()
        .rejects(pgError('canceling statement due to statement timeout', '57014'));
      const { users } = service({ getById });
      const err = await users.get('1').catch((e: unknown) => e);
      expect(err).to.be.instanceOf(StatementTimeoutError);
      expect(getById.callCount).to.equal(1);
    });

    it("pass the repository's own errors through unchanged, without retry", async () => {
      const missing = new NotFoundError({ message: 'User not found.' });
      const getById = sandbox.stub().rejects(missing);
      const { users } = service({ getById });
      expect(await users.get('9').catch((e: unknown) => e)).to.equal(missing);
      expect(getById.callCount).to.equal(1);
    });

    it("join a caller's ambient transaction without retrying in it", async () => {
      const lost = pgError('connection reset', '08006');
      const getById = sandbox.stub().rejects(lost);
      const { users, tx } = service({ getById }, { inTransaction: true });
      expect(await users.get('1').catch((e: unknown) => e)).to.equal(lost);
      expect(getById.callCount).to.equal(1);
      expect(tx.withReadOnlyTransaction.called).to.equal(false);
    });

    it('run in a read-only transaction when a default transaction timeout is configured (it enforces it)', async () => {
      const getById = sandbox.stub().resolves(ADA);
      const { users, tx } = service({ getById }, { defaultTimeout: 5_000 });
      expect(await users.get('1')).to.equal(ADA);
      expect(tx.withReadOnlyTransaction.callCount).to.equal(1);
    });
  });

  describe('create() and update()', () => {
    it('run in a repeatable-read transaction through the breaker', async () => {
      const create = sandbox.stub().resolves(ADA);
      const update = sandbox.stub().resolves(ADA);
      const { users, tx, breaker } = service({ create, update });
      await users.create({ email: ' Ada@Example.com ', name: 'Ada' });
      await users.update('1', { name: 'Ada L.' }, 1);
      expect(create.firstCall.args[0]).to.deep.equal({ email: 'ada@example.com', name: 'Ada' });
      expect(tx.withTransaction.callCount).to.equal(2);
      for (const call of tx.withTransaction.getCalls())
        expect(call.args[1]).to.deep.equal({ isolationLevel: 'repeatable read' });
      expect(breaker.execute.callCount).to.equal(2);
    });
  });
});
