import { expect } from 'chai';
import sinon from 'sinon';
import { RETRY_BUDGET_REFILL_MS, RetryBudget } from '../../../../src/db/tx/retry-budget.js';
import type { TxRetryInfo } from '../../../../src/db/tx/tx-hooks.js';
import { Metrics } from '../../../../src/observability/metrics.js';
import { captureLogger, WARN } from '../../../support/capture-logger.js';
import { metricValue } from '../../../support/metric-value.js';

const retry = (reason: TxRetryInfo['reason'] = 'serialization'): TxRetryInfo => ({
  attempt: 1,
  delayMs: 10,
  reason,
  sqlState: '40001',
  error: new Error('could not serialize access'),
});

describe('RetryBudget', () => {
  let clock: sinon.SinonFakeTimers;
  let metrics: Metrics;
  let log: ReturnType<typeof captureLogger>;
  const budget = (ratio: number, burst: number) =>
    new RetryBudget({ ratio, burst }, { metrics, logger: log.logger });
  /** Asks for `n` retries; returns how many were granted. */
  const ask = (b: RetryBudget, n: number): number =>
    Array.from({ length: n }, () => b.beforeRetry(retry())).filter(Boolean).length;

  beforeEach(() => {
    clock = sinon.useFakeTimers();
    metrics = new Metrics();
    log = captureLogger();
  });

  afterEach(() => {
    clock.restore();
  });

  describe('beforeRetry()', () => {
    it('grants a burst of retries from a full bucket, then vetoes and counts each veto by reason', async () => {
      const b = budget(0.1, 3);
      expect(ask(b, 5)).to.equal(3);
      expect(b.beforeRetry(retry('deadlock'))).to.equal(false);
      expect(await metricValue(metrics.txRetriesVetoed, { reason: 'serialization' })).to.equal(2);
      expect(await metricValue(metrics.txRetriesVetoed, { reason: 'deadlock' })).to.equal(1);
    });

    it('logs one warn line per exhaustion, not one per veto', () => {
      const b = budget(0, 1);
      ask(b, 4);
      clock.tick(RETRY_BUDGET_REFILL_MS); // refilled: one retry granted, then exhausted again
      ask(b, 3);
      const warned = log.lines.filter((l) => l.level === WARN && /retry budget exhausted/.test(l.msg));
      expect(warned).to.have.length(2);
      expect(warned[0]).to.include({ ratio: 0, burst: 1, reason: 'serialization' });
    });
  });

  describe('onEnd()', () => {
    it('earns ratio tokens per transaction: ten transactions at 0.1 pay for one retry', () => {
      const b = budget(0.1, 10);
      expect(ask(b, 10)).to.equal(10);
      for (let i = 0; i < 9; i++) b.onEnd();
      expect(b.beforeRetry(retry())).to.equal(false);
      b.onEnd();
      expect(b.beforeRetry(retry())).to.equal(true);
      expect(b.beforeRetry(retry())).to.equal(false);
    });

    it('never holds more than burst tokens', () => {
      const b = budget(1, 2);
      for (let i = 0; i < 100; i++) b.onEnd();
      expect(b.tokens).to.equal(2);
      expect(ask(b, 5)).to.equal(2);
    });
  });

  describe('refill over time', () => {
    it(`refills burst tokens per ${RETRY_BUDGET_REFILL_MS} ms, in proportion, up to burst`, () => {
      const b = budget(0, 10);
      expect(ask(b, 10)).to.equal(10);
      clock.tick(RETRY_BUDGET_REFILL_MS / 2);
      expect(b.tokens).to.be.closeTo(5, 1e-9);
      expect(ask(b, 10)).to.equal(5);
      clock.tick(RETRY_BUDGET_REFILL_MS * 5);
      expect(b.tokens).to.equal(10);
    });

    it('grants nothing before a whole token has refilled', () => {
      const b = budget(0, 10);
      ask(b, 10);
      clock.tick(RETRY_BUDGET_REFILL_MS / 10 - 1);
      expect(b.beforeRetry(retry())).to.equal(false);
      clock.tick(1);
      expect(b.beforeRetry(retry())).to.equal(true);
    });
  });
});
