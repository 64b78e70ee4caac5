import { expect } from 'chai';
import pino from 'pino';
import sinon from 'sinon';
import { CircuitBreaker } from '../../../src/db/circuit-breaker.js';
import { CircuitOpenError, ConnectionError, UniqueViolationError } from '../../../src/db/errors/errors.js';
import type { HealthReport } from '../../../src/db/database.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { captureLogger } from '../../support/capture-logger.js';

const logger = pino({ level: 'silent' });

function refused(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
}

function report(status: 'up' | 'down'): HealthReport {
  return {
    status,
    latencyMs: 1,
    checkedAt: new Date().toISOString(),
    pool: {
      maxOpenConnections: 1,
      openConnections: 0,
      inUse: 0,
      idle: 0,
      pendingAcquires: 0,
      waitCount: 0,
      waitDurationMs: 0,
      maxIdleClosed: 0,
      maxIdleTimeClosed: 0,
      maxLifetimeClosed: 0,
    },
    breaker: 'closed',
  };
}

async function failWith(breaker: CircuitBreaker, err: Error): Promise<unknown> {
  return breaker
    .execute(() => Promise.reject(err))
    .then(
      () => undefined,
      (e: unknown) => e,
    );
}

async function gauge(metrics: Metrics, name: string): Promise<Record<string, number>> {
  const m = await metrics.registry.getSingleMetric(name)!.get();
  return Object.fromEntries(m.values.map((v) => [String(v.labels.state ?? v.labels.to), v.value]));
}

describe('CircuitBreaker', () => {
  let clock: sinon.SinonFakeTimers;
  afterEach(() => clock?.restore());

  it('opens after the threshold of consecutive connection failures and then fails fast without calling', async () => {
    const breaker = new CircuitBreaker({ threshold: 3, halfOpenAfter: 10_000 }, logger);
    for (let i = 0; i < 3; i++)
      expect(await failWith(breaker, refused())).to.have.property('code', 'ECONNREFUSED');
    expect(breaker.state).to.equal('open');

    const fn = sinon.stub().resolves('never');
    const err = await breaker.execute(fn).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(CircuitOpenError);
    expect((err as CircuitOpenError).retryAfterMs).to.be.within(9_000, 10_000);
    expect(fn.called).to.equal(false);
  });

  it('counts ConnectionError, 08xxx, 57P01 and terminated connections as connection failures', async () => {
    const breaker = new CircuitBreaker({ threshold: 4, halfOpenAfter: 10_000 }, logger);
    await failWith(breaker, new ConnectionError('down'));
    await failWith(breaker, Object.assign(new Error('x'), { code: '08006' }));
    await failWith(breaker, Object.assign(new Error('wrapped'), { nativeError: { code: '57P01' } }));
    expect(breaker.state).to.equal('closed');
    await failWith(breaker, new Error('Connection terminated unexpectedly'));
    expect(breaker.state).to.equal('open');
  });

  it('never counts constraint violations, validation or application errors', async () => {
    const breaker = new CircuitBreaker({ threshold: 2, halfOpenAfter: 10_000 }, logger);
    // Objection's typings declare a message constructor; db-errors' runtime takes these fields.
    const UniqueCtor = UniqueViolationError as unknown as new (args: object) => Error;
    const unique = new UniqueCtor({
      nativeError: Object.assign(new Error('dup'), { code: '23505' }),
      client: 'postgres',
      table: 'users',
      columns: ['email'],
      constraint: 'users_email_key',
    });
    for (const err of [unique, new TypeError('bug'), Object.assign(new Error('s'), { code: '40001' })]) {
      expect(await failWith(breaker, err)).to.equal(err);
      expect(await failWith(breaker, err)).to.equal(err);
    }
    expect(breaker.state).to.equal('closed');
  });

  it('resets the count on a success between failures', async () => {
    const breaker = new CircuitBreaker({ threshold: 2, halfOpenAfter: 10_000 }, logger);
    await failWith(breaker, refused());
    await breaker.execute(() => Promise.resolve(1));
    await failWith(breaker, refused());
    expect(breaker.state).to.equal('closed');
  });

  it('lets one trial through after halfOpenAfter and closes when it succeeds', async () => {
    clock = sinon.useFakeTimers({ now: 1_000_000, toFake: ['Date'] });
    const breaker = new CircuitBreaker({ threshold: 1, halfOpenAfter: 5_000 }, logger);
    await failWith(breaker, refused());
    clock.tick(4_999);
    expect(await failWith(breaker, new Error('unused'))).to.be.instanceOf(CircuitOpenError);
    clock.tick(2);
    expect(await breaker.execute(() => Promise.resolve('trial'))).to.equal('trial');
    expect(breaker.state).to.equal('closed');
  });

  it('opens again when the trial fails with a connection failure', async () => {
    clock = sinon.useFakeTimers({ now: 1_000_000, toFake: ['Date'] });
    const breaker = new CircuitBreaker({ threshold: 1, halfOpenAfter: 5_000 }, logger);
    await failWith(breaker, refused());
    clock.tick(5_001);
    await failWith(breaker, refused());
    expect(breaker.state).to.equal('open');
    expect(breaker.retryAfterMs()).to.equal(5_000);
  });

  it('counts a down health report as a failure and closes on an up report after halfOpenAfter', async () => {
    clock = sinon.useFakeTimers({ now: 1_000_000, toFake: ['Date'] });
    const breaker = new CircuitBreaker({ threshold: 2, halfOpenAfter: 1_000 }, logger);
    await breaker.recordHealth(report('down'));
    expect(breaker.state).to.equal('closed');
    await breaker.recordHealth(report('down'));
    expect(breaker.state).to.equal('open');
    await breaker.recordHealth(report('up'));
    expect(breaker.state, 'still inside halfOpenAfter').to.equal('open');
    clock.tick(1_001);
    await breaker.recordHealth(report('up'));
    expect(breaker.state).to.equal('closed');
  });

  it('exports its state and counts transitions', async () => {
    clock = sinon.useFakeTimers({ now: 1_000_000, toFake: ['Date'] });
    const metrics = new Metrics();
    const breaker = new CircuitBreaker({ threshold: 1, halfOpenAfter: 1_000 }, logger, metrics);
    expect(await gauge(metrics, 'db_circuit_breaker_state')).to.deep.equal({
      closed: 1,
      open: 0,
      'half-open': 0,
    });
    await failWith(breaker, refused());
    expect(await gauge(metrics, 'db_circuit_breaker_state')).to.deep.equal({
      closed: 0,
      open: 1,
      'half-open': 0,
    });
    clock.tick(1_001);
    await breaker.execute(() => Promise.resolve());
    expect(await gauge(metrics, 'db_circuit_breaker_transitions_total')).to.deep.equal({
      open: 1,
      'half-open': 1,
      closed: 1,
    });
  });

  it('logs each transition once', async () => {
    const { logger: capture, lines } = captureLogger('info');
    const breaker = new CircuitBreaker({ threshold: 1, halfOpenAfter: 60_000 }, capture);
    await failWith(breaker, refused());
    await failWith(breaker, refused());
    expect(lines.map((l) => l.breaker)).to.deep.equal(['open']);
  });
});
