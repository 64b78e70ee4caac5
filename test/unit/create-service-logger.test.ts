import { Writable } from 'node:stream';
import { expect } from 'chai';
import { createServiceLogger } from '../../src/app.js';
import type { LogConfig } from '../../src/config/app-config.js';
import { CircuitBreaker } from '../../src/db/circuit-breaker.js';
import { requestContext } from '../../src/http/request-context.js';

const CFG: LogConfig = { level: 'info', pretty: false, queryBindings: false, slowQueryThreshold: 1_000 };

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n'))
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createServiceLogger(CFG, stream), lines };
}

const refused = (): Error =>
  Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

describe('createServiceLogger()', () => {
  it('tags a line written by a component inside a request with the request id', async () => {
    const { logger, lines } = capture();
    const breaker = new CircuitBreaker({ threshold: 1, halfOpenAfter: 60_000 }, logger);
    await requestContext.run({ reqId: 'req-breaker-1' }, () =>
      breaker.execute(() => Promise.reject(refused())).catch(() => undefined),
    );
    const opened = lines.find((l) => /circuit breaker opened/.test(String(l.msg)));
    expect(opened).to.include({ reqId: 'req-breaker-1', level: 50 });
  });

  it('writes lines outside any request without a request id', () => {
    const { logger, lines } = capture();
    logger.child({ component: 'health' }).info('database is up');
    expect(lines).to.have.length(1);
    expect(lines[0]).not.to.have.property('reqId');
  });
});
