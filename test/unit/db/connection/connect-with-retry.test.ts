import { expect } from 'chai';
import pino from 'pino';
import sinon from 'sinon';
import {
  connectWithRetry,
  type ConnectRetryOptions,
} from '../../../../src/db/connection/connect-with-retry.js';
import { ConnectionError } from '../../../../src/db/errors/errors.js';
import { Metrics } from '../../../../src/observability/metrics.js';
import { metricValue } from '../../../support/metric-value.js';

const refused = (): Error =>
  Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

describe('connectWithRetry()', () => {
  let clock: sinon.SinonFakeTimers;
  let metrics: Metrics;
  const options = (over: Partial<ConnectRetryOptions> = {}): ConnectRetryOptions => ({
    maxRetries: 5,
    retryDelayMs: 100,
    maxRetryDelayMs: 300,
    logger: pino({ level: 'silent' }),
    metrics,
    random: () => 0.5,
    ...over,
  });
  const counted = (result: string): Promise<number> => metricValue(metrics.connectAttempts, { result });

  beforeEach(() => {
    clock = sinon.useFakeTimers();
    metrics = new Metrics();
  });
  afterEach(() => {
    clock.restore();
  });

  it('retries transient failures on an exponential, capped, jittered schedule', async () => {
    const attempt = sinon.stub<[number], Promise<void>>();
    attempt.rejects(refused());
    attempt.onCall(3).resolves();
    const done = connectWithRetry(attempt, options());
    // random() = 0.5: delays are half of 100, 200, then the 300 cap.
    const schedule: Array<[number, number]> = [
      [0, 1],
      [49, 1],
      [1, 2],
      [99, 2],
      [1, 3],
      [149, 3],
      [1, 4],
    ];
    for (const [ms, calls] of schedule) {
      await clock.tickAsync(ms);
      expect(attempt.callCount, `after +${ms} ms`).to.equal(calls);
    }
    await done;
    expect(attempt.args.map((a) => a[0])).to.deep.equal([1, 2, 3, 4]);
    expect(await counted('retry')).to.equal(3);
    expect(await counted('success')).to.equal(1);
  });

  it('fails after maxRetries + 1 attempts with the attempt count, a hint and the last cause', async () => {
    const last = refused();
    const attempt = sinon.stub<[number], Promise<void>>().rejects(refused());
    attempt.onCall(2).rejects(last);
    const done = connectWithRetry(attempt, options({ maxRetries: 2 })).catch((e: unknown) => e);
    await clock.tickAsync(1_000);
    const err = (await done) as ConnectionError;
    expect(err).to.be.instanceOf(ConnectionError);
    expect(err.attempts).to.equal(3);
    expect(err.hint).to.match(/DB_HOST/);
    expect(err.cause).to.equal(last);
    expect(attempt.callCount).to.equal(3);
    expect(await counted('failure')).to.equal(1);
  });

  it('does not retry a permanent failure', async () => {
    const auth = Object.assign(new Error('password authentication failed for user "app"'), { code: '28P01' });
    const attempt = sinon.stub<[number], Promise<void>>().rejects(auth);
    const err = (await connectWithRetry(attempt, options()).catch((e: unknown) => e)) as ConnectionError;
    expect(err).to.be.instanceOf(ConnectionError);
    expect(err.attempts).to.equal(1);
    expect(err.hint).to.match(/DB_PASSWORD/);
    await clock.tickAsync(10_000);
    expect(attempt.callCount).to.equal(1);
  });

  it('keeps the driver error as cause when the attempt already wrapped it', async () => {
    const driver = refused();
    const attempt = sinon
      .stub<[number], Promise<void>>()
      .rejects(new ConnectionError('wrapped', { cause: driver }));
    const err = (await connectWithRetry(attempt, options({ maxRetries: 0 })).catch(
      (e: unknown) => e,
    )) as ConnectionError;
    expect(err).to.be.instanceOf(ConnectionError);
    expect(err.cause).to.equal(driver);
  });

  it('stops during a backoff wait as soon as the signal aborts', async () => {
    const controller = new AbortController();
    const attempt = sinon.stub<[number], Promise<void>>().rejects(refused());
    const done = connectWithRetry(
      attempt,
      options({ signal: controller.signal, retryDelayMs: 10_000, maxRetryDelayMs: 10_000 }),
    ).catch((e: unknown) => e);
    await clock.tickAsync(100);
    const reason = new Error('shutdown');
    controller.abort(reason);
    const err = (await done) as ConnectionError;
    expect(err).to.be.instanceOf(ConnectionError);
    expect(err.message).to.match(/aborted after 1 attempt/);
    expect(err.cause).to.equal(reason);
    expect(attempt.callCount).to.equal(1);
    expect(clock.countTimers()).to.equal(0);
  });

  it('stops during an attempt that hangs when the signal aborts', async () => {
    const controller = new AbortController();
    const attempt = sinon.stub<[number], Promise<void>>().returns(new Promise<void>(() => {}));
    const done = connectWithRetry(attempt, options({ signal: controller.signal })).catch((e: unknown) => e);
    await clock.tickAsync(10);
    controller.abort();
    const err = (await done) as ConnectionError;
    expect(err).to.be.instanceOf(ConnectionError);
    expect(err.attempts).to.equal(1);
    expect(err.message).to.match(/aborted/);
  });

  it('makes no attempt when the signal is already aborted', async () => {
    const attempt = sinon.stub<[number], Promise<void>>().resolves();
    const err = (await connectWithRetry(attempt, options({ signal: AbortSignal.abort() })).catch(
      (e: unknown) => e,
    )) as ConnectionError;
    expect(err).to.be.instanceOf(ConnectionError);
    expect(err.attempts).to.equal(0);
    expect(attempt.callCount).to.equal(0);
  });
});
