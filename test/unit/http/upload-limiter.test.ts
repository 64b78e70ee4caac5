import { expect } from 'chai';
import { ConcurrencyLimit } from '../../../src/http/concurrency-limit.js';
import { clientKey } from '../../../src/http/client-key.js';
import { KeyedConcurrencyLimit } from '../../../src/http/keyed-concurrency-limit.js';
import { ImportTooLargeError, RequestTimeoutError } from '../../../src/http/request-errors.js';
import { limitUpload, type UploadLimits } from '../../../src/http/upload-limiter.js';

/** A source that yields `chunks`, waiting `pauseMs` before each. */
async function* trickle(chunks: Buffer[], pauseMs: number): AsyncGenerator<Buffer> {
  for (const chunk of chunks) {
    await new Promise((r) => setTimeout(r, pauseMs));
    yield chunk;
  }
}

/** A source that yields one chunk and then never answers again. */
async function* stalls(): AsyncGenerator<Buffer> {
  yield Buffer.from('x');
  await new Promise(() => {});
}

const NONE: UploadLimits = {
  deadlineAt: Infinity,
  deadlineMs: 0,
  gapMs: 0,
  minBytesPerSecond: 0,
  graceMs: 0,
};

async function drain(source: AsyncIterable<Buffer>): Promise<number> {
  let bytes = 0;
  for await (const chunk of source) bytes += chunk.length;
  return bytes;
}

async function failure(source: AsyncIterable<Buffer>): Promise<RequestTimeoutError> {
  try {
    await drain(source);
  } catch (err) {
    expect(err).to.be.instanceOf(RequestTimeoutError);
    return err as RequestTimeoutError;
  }
  throw new Error('the upload was not cut');
}

describe('limitUpload()', () => {
  it('passes every chunk through when no bound is broken', async () => {
    const chunks = [Buffer.from('ab'), Buffer.from('cde')];
    expect(await drain(limitUpload(trickle(chunks, 1), { ...NONE, gapMs: 1_000 }))).to.equal(5);
  });

  it('cuts a source that stalls longer than the gap bound (body-gap)', async () => {
    const err = await failure(limitUpload(stalls(), { ...NONE, gapMs: 30 }));
    expect(err).to.include({ limit: 'body-gap', bound: 30, code: 'REQUEST_TIMEOUT' });
  });

  it('cuts at the deadline however steadily the source sends (import-deadline)', async () => {
    const chunks = Array.from({ length: 50 }, () => Buffer.alloc(100));
    const start = performance.now();
    const err = await failure(
      limitUpload(trickle(chunks, 5), { ...NONE, deadlineAt: start + 60, deadlineMs: 60, gapMs: 1_000 }),
    );
    expect(err).to.include({ limit: 'import-deadline', bound: 60 });
  });

  it('cuts a source slower than the minimum rate once the grace period is spent (import-rate)', async () => {
    // 1 byte per 10 ms = 100 B/s against a 10 000 B/s minimum.
    const chunks = Array.from({ length: 50 }, () => Buffer.alloc(1));
    const err = await failure(
      limitUpload(trickle(chunks, 10), { ...NONE, minBytesPerSecond: 10_000, graceMs: 40 }),
    );
    expect(err).to.include({ limit: 'import-rate', bound: 10_000 });
  });

  it('credits only the bytes countedBytes reports, so fast but uncounted bytes are cut (import-rate)', async () => {
    // 100 bytes per 5 ms = 20 000 B/s received, against a 1 000 B/s minimum; none of it counted.
    const chunks = Array.from({ length: 200 }, () => Buffer.alloc(100, 0x0a));
    const err = await failure(
      limitUpload(trickle(chunks, 5), {
        ...NONE,
        minBytesPerSecond: 1_000,
        graceMs: 40,
        countedBytes: () => 0,
      }),
    );
    expect(err).to.include({ limit: 'import-rate', bound: 1_000 });
  });

  it('refuses the chunk that takes the body past maxBytes with ImportTooLargeError naming maxBytes', async () => {
    const chunks = [Buffer.alloc(60), Buffer.alloc(40), Buffer.alloc(1)];
    let passed = 0;
    try {
      for await (const chunk of limitUpload(trickle(chunks, 0), { ...NONE, maxBytes: 100 }))
        passed += chunk.length;
      expect.fail('not cut');
    } catch (err) {
      expect(err).to.be.instanceOf(ImportTooLargeError);
      expect(err).to.include({ limit: 'maxBytes', bound: 100, code: 'IMPORT_TOO_LARGE' });
    }
    expect(passed).to.equal(100);
  });

  it('does not count time the consumer spends away (backpressure) against the rate', async () => {
    // The source is fast; the consumer is slow. Waiting for the client is what the rate measures.
    const chunks = Array.from({ length: 5 }, () => Buffer.alloc(10));
    let bytes = 0;
    for await (const chunk of limitUpload(trickle(chunks, 0), {
      ...NONE,
      minBytesPerSecond: 1_000,
      graceMs: 20,
    })) {
      bytes += chunk.length;
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(bytes).to.equal(50);
  });
});

describe('ConcurrencyLimit', () => {
  it('refuses a slot beyond max at once and gives one back on release (once)', () => {
    const limit = new ConcurrencyLimit(2);
    const a = limit.tryAcquire();
    const b = limit.tryAcquire();
    expect(a).to.be.a('function');
    expect(b).to.be.a('function');
    expect(limit.tryAcquire()).to.equal(undefined);
    a!();
    a!();
    expect(limit.active).to.equal(1);
    expect(limit.tryAcquire()).to.be.a('function');
    expect(limit.tryAcquire()).to.equal(undefined);
  });
});

describe('KeyedConcurrencyLimit', () => {
  it('gives each key its own max slots, refuses one more at once, and forgets a key with none held', () => {
    const limit = new KeyedConcurrencyLimit(1);
    const a = limit.tryAcquire('ip:10.0.0.1');
    expect(a).to.be.a('function');
    expect(limit.tryAcquire('ip:10.0.0.1')).to.equal(undefined);
    expect(limit.tryAcquire('sub:alice')).to.be.a('function');
    a!();
    a!();
    expect(limit.active('ip:10.0.0.1')).to.equal(0);
    expect(limit.tryAcquire('ip:10.0.0.1')).to.be.a('function');
  });
});

describe('clientKey()', () => {
  it("keys by the verified token's subject where there is one", () => {
    expect(clientKey({ ip: '10.0.0.1', user: { sub: 'alice' } })).to.equal('sub:alice');
  });

  it('falls back to the peer address without a user, or with one lacking a string sub', () => {
    expect(clientKey({ ip: '10.0.0.1' })).to.equal('ip:10.0.0.1');
    expect(clientKey({ ip: '10.0.0.1', user: { sub: 42 } })).to.equal('ip:10.0.0.1');
    expect(clientKey({ ip: '10.0.0.1', user: { sub: '' } })).to.equal('ip:10.0.0.1');
    expect(clientKey({ ip: '10.0.0.1', user: null })).to.equal('ip:10.0.0.1');
  });
});
