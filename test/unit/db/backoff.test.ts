import { expect } from 'chai';
import sinon from 'sinon';
import { fullJitterDelay, sleep } from '../../../src/db/backoff.js';

describe('fullJitterDelay()', () => {
  const opts = { baseMs: 100, maxMs: 1_000 };

  it('draws uniformly below base * 2^retry', () => {
    expect(fullJitterDelay(0, opts, () => 0.5)).to.equal(50);
    expect(fullJitterDelay(1, opts, () => 0.5)).to.equal(100);
    expect(fullJitterDelay(2, opts, () => 0.5)).to.equal(200);
    expect(fullJitterDelay(3, opts, () => 0.999)).to.equal(799);
  });

  it('caps the ceiling at maxMs however many retries came before', () => {
    expect(fullJitterDelay(4, opts, () => 0.5)).to.equal(500);
    expect(fullJitterDelay(60, opts, () => 0.999)).to.equal(999);
  });

  it('can be zero (full jitter) and is never negative', () => {
    expect(fullJitterDelay(0, opts, () => 0)).to.equal(0);
    expect(fullJitterDelay(-1, opts, () => 0.5)).to.equal(50);
  });

  it('stays within [0, ceiling) with the real random source', () => {
    for (let i = 0; i < 200; i++) expect(fullJitterDelay(2, opts)).to.be.within(0, 399);
  });
});

describe('sleep()', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers();
  });
  afterEach(() => {
    clock.restore();
  });

  it('resolves after the given time and not before', async () => {
    let done = false;
    const p = sleep(100).then(() => {
      done = true;
    });
    await clock.tickAsync(99);
    expect(done).to.equal(false);
    await clock.tickAsync(1);
    await p;
    expect(done).to.equal(true);
  });

  it('rejects with the abort reason as soon as the signal aborts and clears its timer', async () => {
    const controller = new AbortController();
    const p = sleep(10_000, controller.signal);
    const reason = new Error('stop');
    controller.abort(reason);
    const err = await p.catch((e: unknown) => e);
    expect(err).to.equal(reason);
    expect(clock.countTimers()).to.equal(0);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const err = await sleep(10, AbortSignal.abort('why')).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(Error);
    expect((err as Error).cause).to.equal('why');
  });
});
