import { expect } from 'chai';
import sinon from 'sinon';
import type { HealthReport, PoolStats } from '../../../src/db/index.js';
import { HealthService } from '../../../src/health/health-service.js';
import { isSaturated } from '../../../src/health/pool-saturation.js';

const POOL: PoolStats = {
  maxOpenConnections: 3,
  openConnections: 3,
  inUse: 3,
  idle: 0,
  pendingAcquires: 0,
  waitCount: 0,
  waitDurationMs: 0,
  maxIdleClosed: 0,
  maxIdleTimeClosed: 0,
  maxLifetimeClosed: 0,
};

const UP: HealthReport = { status: 'up', latencyMs: 1, checkedAt: 'now', pool: POOL, breaker: 'closed' };

describe('HealthService', () => {
  const sandbox = sinon.createSandbox();
  afterEach(() => sandbox.restore());

  function service(opts: { ttl?: number; pool?: () => PoolStats; saturatedFor?: number } = {}) {
    let release!: () => void;
    const health = sandbox.stub().callsFake(
      () =>
        new Promise<HealthReport>((resolve) => {
          release = () => resolve(UP);
        }),
    );
    const svc = new HealthService({
      db: { health },
      loop: { last: UP },
      breaker: { state: 'closed' },
      reportCacheTtlMs: opts.ttl ?? 0,
      ...(opts.pool && { poolStats: opts.pool, poolSaturatedForMs: opts.saturatedFor ?? 0 }),
    });
    return { svc, health, release: () => release() };
  }

  describe('report()', () => {
    it('shares one check among concurrent calls', async () => {
      const { svc, health, release } = service();
      const calls = [svc.report(), svc.report(), svc.report()];
      release();
      await Promise.all(calls);
      expect(health.callCount).to.equal(1);
    });

    it('runs a new check for a call after the last one finished when there is no TTL', async () => {
      const { svc, health, release } = service();
      const first = svc.report();
      release();
      await first;
      const second = svc.report();
      release();
      await second;
      expect(health.callCount).to.equal(2);
    });

    it('reuses a finished report within the TTL', async () => {
      const { svc, health, release } = service({ ttl: 60_000 });
      const first = svc.report();
      release();
      await first;
      await svc.report();
      expect(health.callCount).to.equal(1);
    });
  });

  describe('readiness()', () => {
    it('is not ready with reason "pool saturated" once saturation lasted the threshold, and ready when it ends', async () => {
      let stats: PoolStats = { ...POOL, pendingAcquires: 2 };
      const { svc } = service({ pool: () => stats, saturatedFor: 20 });
      try {
        expect(svc.readiness().ready, 'just saturated').to.equal(true);
        await new Promise((r) => setTimeout(r, 40));
        expect(svc.readiness()).to.include({ ready: false, reason: 'pool saturated' });
        stats = { ...POOL, inUse: 2, idle: 1 };
        expect(svc.readiness().ready).to.equal(true);
      } finally {
        svc.startDraining(); // stops the sampler
      }
    });

    it('ignores the pool without a threshold', () => {
      const { svc } = service({ pool: () => ({ ...POOL, pendingAcquires: 5 }), saturatedFor: 0 });
      expect(svc.readiness().ready).to.equal(true);
    });
  });

  it('calls a pool saturated only with every connection in use and someone waiting', () => {
    expect(isSaturated({ ...POOL, pendingAcquires: 1 })).to.equal(true);
    expect(isSaturated(POOL)).to.equal(false);
    expect(isSaturated({ ...POOL, inUse: 2, pendingAcquires: 1 })).to.equal(false);
  });
});
