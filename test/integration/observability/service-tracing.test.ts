import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { expect } from 'chai';
import {
  childrenOf,
  onlySpan,
  serialisedSpans,
  useInMemoryTracing,
} from '../../support/in-memory-tracing.js';
import { patchThroughSerializationRetry } from '../../support/serialization-retry.js';
import { useTestService, waitFor } from '../../support/service-fixture.js';
import { useTestDatabase } from '../../support/test-database.js';

/** Bound in the INSERT (as the body's email and name), never in the URL: must appear in no span. */
const EMAIL = 'traced-7c1e4b@example.com';
const NAME = 'Traced Name 5d2f';

async function createUser(url: string, email: string, name: string): Promise<string> {
  const res = await fetch(`${url}/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, name }),
  });
  expect(res.status, await res.clone().text()).to.equal(201);
  return ((await res.json()) as { id: string }).id;
}

describe('tracing of the service (observability.tracing: true, in-memory SDK)', () => {
  const db = useTestDatabase();
  const tracing = useInMemoryTracing();
  const svc = useTestService(db, { observability: { tracing: true } });

  /** The spans so far, once the server span of the last request has ended (after the response). */
  async function spansOf(serverSpans: number): Promise<ReadableSpan[]> {
    await waitFor(
      () =>
        Promise.resolve(
          tracing()
            .spans()
            .filter((s) => s.kind === SpanKind.SERVER).length >= serverSpans,
        ),
      2_000,
      'the server spans to end',
    );
    return tracing().spans();
  }

  it('makes the request the parent of its transaction, whose children are the acquire and the INSERT', async () => {
    await createUser(svc().url, EMAIL, NAME);
    const all = await spansOf(1);
    const request = onlySpan(all, 'POST /users');
    expect(request.kind).to.equal(SpanKind.SERVER);
    expect(request.parentSpanContext).to.equal(undefined);
    expect(request.status.code).to.equal(SpanStatusCode.UNSET);
    expect(request.attributes).to.include({
      'http.request.method': 'POST',
      'url.path': '/users',
      'url.scheme': 'http',
      'http.route': '/users',
      'http.response.status_code': 201,
    });
    const tx = onlySpan(all, 'db.transaction');
    expect(childrenOf(all, request)).to.deep.equal([tx]);
    // Two INSERTs in the one transaction: the user, then its audit record (docs/service.md, Audit trail).
    const inserts = childrenOf(all, tx).filter((span) => span.name === 'INSERT');
    expect(childrenOf(all, tx).map((span) => span.name)).to.include('db.connection.acquire');
    expect(inserts.map((span) => String(span.attributes['db.query.text']).split(' (')[0])).to.deep.equal([
      'insert into "users"',
      'insert into "audit_log"',
    ]);
    expect(inserts[0]!.attributes['db.query.text']).to.match(/^insert into "users" .*\$1/);
    expect(tx.attributes).to.include({ 'pgdl.transaction.outcome': 'committed' });
  });

  it('shows a real 40001 of a PATCH as a retry event on the transaction under the request span', async () => {
    const id = await createUser(svc().url, 'traced-retry@example.com', 'Retry');
    tracing().reset();
    const res = await patchThroughSerializationRetry(svc().url, db().url, id);
    expect(res.status, await res.clone().text()).to.equal(200);
    const all = await spansOf(1);
    const request = onlySpan(all, 'PATCH /users/:id');
    expect(request.attributes).to.include({
      'http.route': '/users/:id',
      'url.path': `/users/${id}`,
      'http.response.status_code': 200,
    });
    const tx = onlySpan(all, 'db.transaction');
    expect(tx.parentSpanContext?.spanId).to.equal(request.spanContext().spanId);
    expect(tx.attributes).to.include({
      'pgdl.transaction.attempts': 2,
      'pgdl.transaction.outcome': 'committed',
    });
    expect(tx.events.map((e) => e.name)).to.deep.equal(['retry']);
    expect(tx.events[0]!.attributes).to.include({
      'pgdl.retry.reason': 'serialization',
      'error.type': '40001',
    });
  });

  it('parents a read outside any transaction on the request span; a 404 is not an error', async () => {
    const missing = '987654321987';
    const res = await fetch(`${svc().url}/users/${missing}`);
    expect(res.status).to.equal(404);
    const all = await spansOf(1);
    const request = onlySpan(all, 'GET /users/:id');
    expect(request.status.code).to.equal(SpanStatusCode.UNSET);
    expect(request.attributes).to.include({
      'http.response.status_code': 404,
      'url.path': `/users/${missing}`,
    });
    expect(childrenOf(all, request).map((s) => s.name)).to.include('SELECT');
  });

  it('keeps the path of a URL without its query string', async () => {
    const res = await fetch(`${svc().url}/users?status=suspended&limit=7`);
    expect(res.status).to.equal(200);
    const request = onlySpan(await spansOf(1), 'GET /users');
    expect(request.attributes['url.path']).to.equal('/users');
    expect(serialisedSpans(tracing().spans())).not.to.match(/limit=7|status=suspended/);
  });

  it('puts neither the database password nor a bound value in any span', async () => {
    const password = db().config().password;
    expect(password, 'the test database has a password').not.to.equal('');
    const id = await createUser(svc().url, `x-${EMAIL}`, NAME);
    await fetch(`${svc().url}/users/${id}`);
    const text = serialisedSpans(await spansOf(2));
    expect(text).not.to.include(password);
    expect(text).not.to.include(EMAIL);
    expect(text).not.to.include(NAME);
  });
});

describe('tracing of the service, off (the default), with an SDK registered', () => {
  const db = useTestDatabase();
  const tracing = useInMemoryTracing();
  const svc = useTestService(db);

  it('makes no span for a request, its transaction or its statements', async () => {
    const id = await createUser(svc().url, EMAIL, NAME);
    await fetch(`${svc().url}/users/${id}`);
    await new Promise((r) => setTimeout(r, 50));
    expect(tracing().spans()).to.deep.equal([]);
  });
});
