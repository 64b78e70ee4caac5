import { expect } from 'chai';
import { captureLogger, WARN } from '../../../support/capture-logger.js';
import { takeRetryVeto, TxHookSet, type TxHooks, type TxRetryInfo } from '../../../../src/db/tx/tx-hooks.js';

const retryInfo = (error: unknown): TxRetryInfo => ({
  attempt: 1,
  delayMs: 5,
  reason: 'serialization',
  sqlState: '40001',
  error,
});

describe('TxHookSet', () => {
  it('reports no hook of a kind until one with that method is added', () => {
    const set = new TxHookSet(captureLogger().logger);
    expect([set.hasRetry, set.hasStatement, set.hasEnd]).to.deep.equal([false, false, false]);
    expect(set.statementListener({ attempt: 1, readOnly: false })).to.equal(undefined);
    const remove = set.add({ onEnd: () => {} });
    expect([set.hasRetry, set.hasStatement, set.hasEnd]).to.deep.equal([false, false, true]);
    remove();
    expect(set.hasEnd).to.equal(false);
  });

  it('stops at the first beforeRetry that returns false and marks the error as vetoed once', () => {
    const set = new TxHookSet(captureLogger().logger);
    const asked: string[] = [];
    set.add({ beforeRetry: () => void asked.push('a') });
    set.add({ beforeRetry: () => (asked.push('b'), false) });
    set.add({ beforeRetry: () => (asked.push('c'), true) });
    const err = new Error('40001');
    expect(set.allowRetry(retryInfo(err))).to.equal(false);
    expect(asked).to.deep.equal(['a', 'b']);
    expect(takeRetryVeto(err)).to.equal(true);
    expect(takeRetryVeto(err)).to.equal(false);
  });

  it('lets the retry happen when a beforeRetry hook throws or returns a promise of false', async () => {
    const { logger, lines } = captureLogger();
    const set = new TxHookSet(logger);
    set.add({
      beforeRetry: () => {
        throw new Error('broken budget');
      },
    });
    set.add({ beforeRetry: (() => Promise.resolve(false)) as unknown as TxHooks['beforeRetry'] });
    const err = new Error('40001');
    expect(set.allowRetry(retryInfo(err))).to.equal(true);
    expect(takeRetryVeto(err)).to.equal(false);
    await Promise.resolve();
    expect(lines.filter((l) => l.level === WARN).map((l) => l.hook)).to.deep.equal(['beforeRetry']);
  });

  it('catches a rejected promise from a hook and warns once per hook method', async () => {
    const { logger, lines } = captureLogger();
    const set = new TxHookSet(logger);
    set.add({ onEnd: () => Promise.reject(new Error('async end')) as unknown as void });
    const end = {
      outcome: 'committed',
      attempts: 1,
      durationMs: 1,
      retryVetoed: false,
      readOnly: false,
    } as const;
    set.end(end);
    set.end(end);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.filter((l) => l.level === WARN)).to.have.length(1);
    expect(lines.filter((l) => l.msg === 'transaction hook threw again; ignored')).to.have.length(1);
  });

  it('finishes the current round when a hook removes hooks while they run', () => {
    const set = new TxHookSet(captureLogger().logger);
    const seen: string[] = [];
    let removeB: () => void = () => {};
    set.add({ onStatement: () => (seen.push('a'), removeB()) });
    removeB = set.add({ onStatement: () => void seen.push('b') });
    const listener = set.statementListener({ attempt: 1, readOnly: false })!;
    listener();
    listener();
    expect(seen).to.deep.equal(['a', 'b', 'a', 'b']);
    set.statementListener({ attempt: 2, readOnly: false })!();
    expect(seen.slice(4)).to.deep.equal(['a']);
  });
});
