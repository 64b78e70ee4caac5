import { expect } from 'chai';
import sinon from 'sinon';
import { runWithRetry } from '../../../../src/db/tx/tx-runner.js';
import { isTransient } from '../../../../src/db/errors/classify-error.js';

const serializationFailure = (): Error =>
  Object.assign(new Error('could not serialize access'), { code: '40001' });

describe('runWithRetry()', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers();
  });
  afterEach(() => {
    clock.restore();
  });

  /** Runs a callback that fails `failures` times, recording the fake clock at each attempt. */
  async function schedule(failures: number, opts: { maxAttempts: number; random?: () => number }) {
    const at: number[] = [];
    const delays: number[] = [];
    const run = runWithRetry(
      (attempt) => {
        at.push(clock.now);
        return attempt <= failures ? Promise.reject(serializationFailure()) : Promise.resolve(attempt);
      },
      {
        maxAttempts: opts.maxAttempts,
        baseDelayMs: 20,
        maxDelayMs: 100,
        random: opts.random ?? (() => 0.5),
        shouldRetry: (err) => isTransient(err),
        onRetry: ({ delayMs }) => delays.push(delayMs),
      },
    );
    const settled = run.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    await clock.runAllAsync();
    return { result: await settled, at, delays };
  }

  it('waits exponentially longer between attempts, capped at maxDelayMs (full jitter: a draw below the ceiling)', async () => {
    const { result, at, delays } = await schedule(5, { maxAttempts: 6 });
    expect(result).to.deep.equal({ value: 6 });
    // random() = 0.5 draws half of each ceiling: min(100, 20 * 2^n) for n = 0..4
    expect(delays).to.deep.equal([10, 20, 40, 50, 50]);
    expect(at.slice(1).map((t, i) => t - at[i]!)).to.deep.equal([10, 20, 40, 50, 50]);
  });

  it('draws each delay from [0, ceiling)', async () => {
    const low = await schedule(3, { maxAttempts: 4, random: () => 0 });
    expect(low.delays).to.deep.equal([0, 0, 0]);
    const high = await schedule(3, { maxAttempts: 4, random: () => 0.999999 });
    expect(high.delays).to.deep.equal([19, 39, 79]);
  });

  it('makes at most maxAttempts attempts, then rethrows the last error unchanged', async () => {
    const { result, at } = await schedule(10, { maxAttempts: 3 });
    expect(at).to.have.length(3);
    expect((result as { error: Error }).error.message).to.equal('could not serialize access');
  });

  it('runs once when maxAttempts is 1 (retry: false)', async () => {
    const { at } = await schedule(10, { maxAttempts: 1 });
    expect(at).to.have.length(1);
  });

  it('does not retry an error shouldRetry refuses', async () => {
    let calls = 0;
    const run = runWithRetry(
      () => {
        calls++;
        return Promise.reject(new Error('business rule'));
      },
      { maxAttempts: 5, baseDelayMs: 20, maxDelayMs: 100, shouldRetry: (err) => isTransient(err) },
    ).catch((err: unknown) => err);
    await clock.runAllAsync();
    expect(((await run) as Error).message).to.equal('business rule');
    expect(calls).to.equal(1);
  });

  it('hands shouldRetry the delay it is about to wait, so a deadline can stop the retry', async () => {
    const seen: number[] = [];
    let calls = 0;
    const run = runWithRetry(
      () => {
        calls++;
        return Promise.reject(serializationFailure());
      },
      {
        maxAttempts: 5,
        baseDelayMs: 20,
        maxDelayMs: 100,
        random: () => 0.5,
        shouldRetry: (_err, delayMs) => {
          seen.push(delayMs);
          return clock.now + delayMs < 25;
        },
      },
    ).catch((err: unknown) => err);
    await clock.runAllAsync();
    // The refused retry surfaces the last failure unchanged.
    expect(await run)
      .to.be.instanceOf(Error)
      .and.to.have.property('code', '40001');
    expect(seen).to.deep.equal([10, 20]);
    expect(calls).to.equal(2);
  });
});
