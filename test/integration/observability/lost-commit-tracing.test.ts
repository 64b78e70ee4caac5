import { SpanStatusCode } from '@opentelemetry/api';
import { expect } from 'chai';
import pino from 'pino';
import { TxManager } from '../../../src/db/tx/tx-manager.js';
import { onlySpan, useInMemoryTracing } from '../../support/in-memory-tracing.js';
import { useProxiedLedger } from '../../support/proxied-ledger.js';
import { useTestDatabase } from '../../support/test-database.js';

const silent = pino({ level: 'silent' });

describe('tracing of a COMMIT whose connection is lost (TCP proxy, in-memory SDK)', () => {
  const db = useTestDatabase();
  const ledger = useProxiedLedger(db);
  const tracing = useInMemoryTracing();
  let tm: TxManager;

  before(() => {
    // A TxManager of its own, with an explicit tracer: transaction spans only.
    tm = new TxManager(ledger().pdb, silent, {
      tracing: { tracer: tracing().tracer },
      commitLookupTimeoutMs: 300,
    });
  });

  afterEach(() => ledger().proxy.refuseNewConnections(false));

  after(async () => {
    await ledger().close();
  });

  it('adds a commit_lookup event saying committed, and the transaction span says committed', async () => {
    ledger().proxy.onNextCommit('cut-after-forward');
    await tm.withTransaction((trx) => trx('ledger').insert({ id: 1, note: 'committed' }));
    const tx = onlySpan(tracing().spans(), 'db.transaction');
    expect(tx.events.map((e) => [e.name, e.attributes])).to.deep.equal([
      ['commit_lookup', { 'pgdl.commit_lookup.outcome': 'committed' }],
    ]);
    expect(tx.attributes).to.include({
      'pgdl.transaction.outcome': 'committed',
      'pgdl.transaction.attempts': 1,
    });
    expect(await ledger().rowsWithId(1)).to.equal(1);
  });

  it('adds commit_lookup aborted, then a retry with reason commit_aborted', async () => {
    ledger().proxy.onNextCommit('cut-before-forward');
    await tm.withTransaction((trx) => trx('ledger').insert({ id: 2, note: 'aborted, then retried' }));
    const tx = onlySpan(tracing().spans(), 'db.transaction');
    expect(tx.events.map((e) => e.name)).to.deep.equal(['commit_lookup', 'retry']);
    expect(tx.events[0]!.attributes).to.deep.equal({ 'pgdl.commit_lookup.outcome': 'aborted' });
    expect(tx.events[1]!.attributes).to.include({
      'pgdl.retry.reason': 'commit_aborted',
      'error.type': 'CommitAbortedError',
    });
    expect(tx.attributes).to.include({
      'pgdl.transaction.outcome': 'committed',
      'pgdl.transaction.attempts': 2,
    });
  });

  it('ends with outcome commit_unknown, status ERROR, when the outcome cannot be looked up', async () => {
    ledger().proxy.onNextCommit('cut-after-forward', { thenRefuse: true });
    await tm
      .withTransaction((trx) => trx('ledger').insert({ id: 3, note: 'unknown' }))
      .catch(() => undefined);
    const tx = onlySpan(tracing().spans(), 'db.transaction');
    expect(tx.events.map((e) => [e.name, e.attributes])).to.deep.equal([
      ['commit_lookup', { 'pgdl.commit_lookup.outcome': 'unknown' }],
    ]);
    expect(tx.status.code).to.equal(SpanStatusCode.ERROR);
    expect(tx.attributes).to.include({
      'pgdl.transaction.outcome': 'commit_unknown',
      'error.type': 'CommitUnknownError',
    });
  });
});
