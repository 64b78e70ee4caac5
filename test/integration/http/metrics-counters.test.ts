import { expect } from 'chai';
import { useTestDatabase } from '../../support/test-database.js';
import { parsePrometheusText, sampleValue, type Sample } from '../../support/prometheus-text.js';
import { patchThroughSerializationRetry } from '../../support/serialization-retry.js';
import { useTestService } from '../../support/service-fixture.js';

describe('GET /metrics counters', () => {
  const db = useTestDatabase();
  const svc = useTestService(db);

  const scrape = async (): Promise<Sample[]> => {
    const res = await fetch(`${svc().url}/metrics`);
    expect(res.status).to.equal(200);
    return parsePrometheusText(await res.text());
  };

  const createUser = async (email: string): Promise<{ id: string; version: number }> => {
    const res = await fetch(`${svc().url}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, name: 'Metrics' }),
    });
    expect(res.status).to.equal(201);
    return (await res.json()) as { id: string; version: number };
  };

  it('counts committed and rolled-back transactions by isolation, and query durations', async () => {
    const before = await scrape();
    await createUser('metrics-commit@example.com');
    const dup = await fetch(`${svc().url}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'METRICS-COMMIT@example.com', name: 'Twin' }),
    });
    expect(dup.status).to.equal(409);
    const after = await scrape();

    const committed = { outcome: 'committed', isolation: 'repeatable read' };
    const rolledBack = { outcome: 'rolled_back', isolation: 'repeatable read' };
    expect(sampleValue(after, 'db_transactions_total', committed)).to.equal(
      sampleValue(before, 'db_transactions_total', committed) + 1,
    );
    expect(sampleValue(after, 'db_transactions_total', rolledBack)).to.equal(
      sampleValue(before, 'db_transactions_total', rolledBack) + 1,
    );
    expect(sampleValue(after, 'db_query_duration_seconds_count')).to.be.greaterThan(
      sampleValue(before, 'db_query_duration_seconds_count'),
    );
  });

  it('counts a retry after a forced serialization failure, and the retried PATCH succeeds', async () => {
    const user = await createUser('metrics-retry@example.com');
    const before = await scrape();

    const res = await patchThroughSerializationRetry(svc().url, db().url, user.id);
    expect(res.status, await res.clone().text()).to.equal(200);
    expect(await res.json()).to.include({ name: 'Retried', version: 2 });

    const after = await scrape();
    expect(sampleValue(after, 'db_transaction_retries_total', { reason: 'serialization' })).to.equal(
      sampleValue(before, 'db_transaction_retries_total', { reason: 'serialization' }) + 1,
    );
    expect(sampleValue(after, 'db_transactions_started_total', { isolation: 'repeatable read' })).to.equal(
      sampleValue(before, 'db_transactions_started_total', { isolation: 'repeatable read' }) + 2,
    );
  });

  it('counts HTTP responses by method, route pattern and status code, and times them', async () => {
    const before = await scrape();
    const user = await createUser('metrics-http@example.com');
    expect((await fetch(`${svc().url}/users/${user.id}`)).status).to.equal(200);
    expect((await fetch(`${svc().url}/users/999999999999`)).status).to.equal(404);
    expect((await fetch(`${svc().url}/no-such-route/${user.id}`)).status).to.equal(404);
    const after = await scrape();
    const grew = (labels: Record<string, string>): number =>
      sampleValue(after, 'http_requests_total', labels) - sampleValue(before, 'http_requests_total', labels);
    expect(grew({ method: 'POST', route: '/users', status_code: '201' })).to.equal(1);
    expect(grew({ method: 'GET', route: '/users/:id', status_code: '200' })).to.equal(1);
    expect(grew({ method: 'GET', route: '/users/:id', status_code: '404' })).to.equal(1);
    expect(grew({ method: 'GET', route: 'unmatched', status_code: '404' })).to.equal(1);
    // The raw URL never becomes a label value.
    expect(
      after.filter((s) => s.name === 'http_requests_total' && s.labels.route?.includes(user.id)),
    ).to.deep.equal([]);
    const durations = (s: Sample[]): number =>
      sampleValue(s, 'http_request_duration_seconds_count', {
        method: 'GET',
        route: '/users/:id',
        status_code: '200',
      });
    expect(durations(after) - durations(before)).to.equal(1);
  });
});
