import { expect } from 'chai';
import type { Knex } from 'knex';
import pino from 'pino';
import { CommitUnknownError, TransactionTimeoutError } from '../../../../src/db/errors/errors.js';
import { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { TxManager } from '../../../../src/db/tx/tx-manager.js';
import { Metrics } from '../../../../src/observability/metrics.js';
import { captureLogger } from '../../../support/capture-logger.js';
import { itResolvesLostCommits, lookedUp } from '../../../support/lost-commit-cases.js';
import { metricValue } from '../../../support/metric-value.js';
import { useProxiedLedger } from '../../../support/proxied-ledger.js';
import type { TcpProxy } from '../../../support/tcp-proxy.js';
import { useTestDatabase } from '../../../support/test-database.js';

describe('TxManager: connection lost while COMMIT is in flight (TCP proxy)', () => {
  const db = useTestDatabase();
  const ledger = useProxiedLedger(db);
  let proxy: TcpProxy;
  let pdb: PostgresDatabase;
  let knex: Knex;
  const rowsWithId = (id: number): Promise<number> => ledger().rowsWithId(id);

  before(() => {
    ({ proxy, pdb } = ledger());
    knex = pdb.driver();
  });

  afterEach(() => {
    proxy.refuseNewConnections(false);
  });

  after(async () => {
    expect((knex.client as { pool: { numUsed(): number } }).pool.numUsed()).to.equal(0);
    expect(pdb.getConnectionStats().inUse).to.equal(0);
    await ledger().close();
  });

  itResolvesLostCommits({ pdb: () => pdb, proxy: () => proxy, rowsWithId });

  it('rejects with CommitUnknownError and does not retry when the outcome cannot be looked up', async () => {
    const metrics = new Metrics();
    const tm = new TxManager(pdb, pino({ level: 'silent' }), { metrics, commitLookupTimeoutMs: 300 });
    let calls = 0;
    proxy.onNextCommit('cut-after-forward', { thenRefuse: true });
    const err = await tm
      .withTransaction(async (trx) => {
        calls++;
        await trx('ledger').insert({ id: 3, note: 'unknown' });
      })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(CommitUnknownError);
    expect((err as CommitUnknownError).xid).to.match(/^\d+$/);
    expect(calls).to.equal(1);
    expect(await metricValue(metrics.txEnded, { outcome: 'commit_unknown' })).to.equal(1);
    expect(await metricValue(metrics.commitLookups, { outcome: 'unknown' })).to.equal(1);
    // It had in fact committed: a blind retry would have written it twice (or failed on the key).
    expect(await rowsWithId(3)).to.equal(1);
  });

  it('retries an unknown outcome when the work is declared idempotent', async () => {
    const metrics = new Metrics();
    const tm = new TxManager(pdb, pino({ level: 'silent' }), { metrics, commitLookupTimeoutMs: 300 });
    let calls = 0;
    proxy.onNextCommit('cut-after-forward', { thenRefuse: true });
    const reopen = setTimeout(() => proxy.refuseNewConnections(false), 600);
    try {
      await tm.withTransaction(
        async (trx) => {
          calls++;
          await trx.raw('insert into ledger (id, note) values (4, ?) on conflict (id) do nothing', [
            'idempotent',
          ]);
        },
        { idempotent: true, retry: { maxAttempts: 10, baseDelayMs: 200, maxDelayMs: 400 } },
      );
    } finally {
      clearTimeout(reopen);
    }
    expect(calls).to.equal(2);
    expect(await rowsWithId(4)).to.equal(1);
    expect(await metricValue(metrics.txRetries, { reason: 'commit_unknown' })).to.equal(1);
  });

  it('treats a read-only transaction cut at COMMIT as done: it wrote nothing', async () => {
    await knex('ledger').insert({ id: 6, note: 'read back' });
    const { logger, lines } = captureLogger();
    const tm = new TxManager(pdb, logger);
    let calls = 0;
    const commits = proxy.commitsSeen;
    proxy.onNextCommit('cut-after-forward', { thenRefuse: true });
    const note = await tm.withReadOnlyTransaction(async (trx) => {
      calls++;
      const { rows } = await trx.raw<{ rows: Array<{ note: string }> }>(
        'select note from ledger where id = ?',
        [6],
      );
      return rows[0]?.note;
    });
    expect(note).to.equal('read back');
    expect(calls).to.equal(1);
    // Its COMMIT was the one cut, and with no xid there was nothing to look up.
    expect(proxy.commitsSeen - commits).to.equal(1);
    expect(lookedUp(lines)).to.deep.equal([]);
  });

  it('rejects with TransactionTimeoutError when COMMIT vanishes into a partition past the deadline and the server aborted', async () => {
    const { logger, lines } = captureLogger();
    const tm = new TxManager(pdb, logger, { commitLookupTimeoutMs: 3_000 });
    proxy.onNextCommit('blackhole');
    const started = performance.now();
    const err = await tm
      .withTimeout(400, async (trx) => {
        await trx('ledger').insert({ id: 5, note: 'partitioned' });
      })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(TransactionTimeoutError);
    expect(performance.now() - started).to.be.lessThan(3_000);
    // The backend never saw COMMIT nor its client leave: "in progress" until the lookup ended it.
    expect(lookedUp(lines)).to.deep.equal(['aborted']);
    expect(await rowsWithId(5)).to.equal(0);
  });
});
