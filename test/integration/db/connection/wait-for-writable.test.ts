import { expect } from 'chai';
import { ConnectionError } from '../../../../src/db/errors/errors.js';
import { useDatabases, waitFor } from '../../../support/postgres-database-helpers.js';
import { startStreamingCluster, type StreamingCluster } from '../../../support/streaming-standby.js';
import { postgresConfigFromUrl } from '../../../support/test-database.js';

/*
 * A failover or switchover leaves a window in which every host answers and none is writable.
 * A new connection for `read-write` waits for one within the connect timeout (backoff 25-250
 * ms between passes) instead of failing at once, so a caller's attempts are not spent on
 * instant "no host matched" answers while its deadline has time left.
 */
describe('PostgresDatabase waits for a writable host within the connect timeout', function () {
  this.timeout(60_000);
  let cluster: StreamingCluster;
  const open = useDatabases();

  before(async () => {
    cluster = await startStreamingCluster([{}]);
    await cluster.primary.query('create table ledger (id serial primary key, note text)');
  });
  after(async () => {
    await cluster?.destroy();
  });

  it('fails with NO_MATCHING_HOST, naming the hosts, once the connect timeout is nearly spent, after waiting', async () => {
    const { db, log } = open({
      ...postgresConfigFromUrl(new URL(cluster.primary.url())),
      hosts: [cluster.standbys[0]!.hostPort],
      targetSessionAttrs: 'read-write',
      maxRetries: 0,
      timeout: 600,
    });
    const err = await db.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ConnectionError);
    expect(((err as ConnectionError).cause as { code?: string }).code).to.equal('NO_MATCHING_HOST');
    expect(log.text()).to.include('waiting for one');
  });

  it('a write started while no host is writable waits for the promotion and commits in one attempt', async () => {
    const [primary, standby] = [cluster.primary, cluster.standbys[0]!];
    await cluster.waitForReplay();
    const { db, log } = open({
      ...postgresConfigFromUrl(new URL(primary.url())),
      hosts: [primary.hostPort, standby.hostPort],
      targetSessionAttrs: 'read-write',
      maxRetries: 0,
      timeout: 8_000,
    });
    await primary.kill();
    let attempts = 0;
    const write = db.withTransaction(
      async (trx) => {
        attempts++;
        await trx('ledger').insert({ note: 'across the promotion' });
      },
      { timeoutMs: 10_000, retry: { maxAttempts: 1 } },
    );
    // The write is waiting for a writable host (no attempt has begun) when the standby is promoted.
    await waitFor(() => log.text().includes('waiting for one'), 5_000);
    expect(attempts).to.equal(0);
    await standby.promote();
    await write;
    expect(attempts).to.equal(1);
    const rows = await standby.query<{ note: string }>('select note from ledger');
    expect(rows.map((r) => r.note)).to.deep.equal(['across the promotion']);
  });
});
