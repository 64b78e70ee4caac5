import { expect } from 'chai';
import { useTestDatabase } from '../../support/test-database.js';
import { patchThroughSerializationRetry } from '../../support/serialization-retry.js';
import { useTestService } from '../../support/service-fixture.js';

describe('Request id on log lines below the HTTP layer', () => {
  const db = useTestDatabase();
  const svc = useTestService(db);

  it("tags TxManager's retry warning with the id of the request whose transaction was retried", async () => {
    const created = await fetch(`${svc().url}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'reqid-retry@example.com', name: 'Retry' }),
    });
    expect(created.status).to.equal(201);
    const user = (await created.json()) as { id: string };

    const res = await patchThroughSerializationRetry(svc().url, db().url, user.id, {
      'x-request-id': 'req-retry-1',
    });
    expect(res.status, await res.clone().text()).to.equal(200);
    const retries = svc().logs.filter((l) => l.msg === 'transaction failed transiently; retrying');
    expect(retries).to.have.length(1);
    expect(retries[0]).to.include({ level: 40, reqId: 'req-retry-1' });
  });

  it('leaves lines written outside a request without a request id', () => {
    const listening = svc().logs.find((l) => /^listening on /.test(l.msg));
    expect(listening).to.include({ msg: `listening on ${svc().url}` });
    expect(listening).not.to.have.property('reqId');
  });
});
