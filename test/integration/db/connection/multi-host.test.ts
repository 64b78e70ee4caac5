import { expect } from 'chai';
import type { TargetSessionAttrs } from '../../../../src/config/app-config.js';
import { ConnectionError } from '../../../../src/db/errors/errors.js';
import { freePort } from '../../../support/free-port.js';
import { useDatabases, waitFor } from '../../../support/postgres-database-helpers.js';
import { startStreamingCluster, type StreamingCluster } from '../../../support/streaming-standby.js';
import { postgresConfigFromUrl } from '../../../support/test-database.js';

type Target = { hosts: string[]; targetSessionAttrs: TargetSessionAttrs };

/** The port of the server a query runs on, and whether it is a standby. */
async function whereAmI(
  run: (sql: string) => Promise<{ rows: Array<{ port: number; standby: boolean }> }>,
): Promise<{ port: number; standby: boolean }> {
  const { rows } = await run('select inet_server_port() as port, pg_is_in_recovery() as standby');
  return rows[0]!;
}

describe('PostgresDatabase with several hosts (libpq multi-host)', function () {
  this.timeout(60_000);
  let cluster: StreamingCluster;
  let deadHost: string;
  const open = useDatabases();
  const config = (target: Target) => ({
    ...postgresConfigFromUrl(new URL(cluster.primary.url())),
    ...target,
    maxRetries: 0,
    timeout: 2_000,
  });

  before(async () => {
    cluster = await startStreamingCluster([{}]);
    deadHost = `127.0.0.1:${await freePort()}`;
  });
  after(async () => {
    await cluster?.destroy();
  });

  const cases: Array<[TargetSessionAttrs, 'primary' | 'standby', (c: StreamingCluster) => string[]]> = [
    ['read-write', 'primary', (c) => [c.standbys[0]!.hostPort, c.primary.hostPort]],
    ['primary', 'primary', (c) => [c.standbys[0]!.hostPort, c.primary.hostPort]],
    ['read-only', 'standby', (c) => [c.primary.hostPort, c.standbys[0]!.hostPort]],
    ['standby', 'standby', (c) => [c.primary.hostPort, c.standbys[0]!.hostPort]],
    ['prefer-standby', 'standby', (c) => [c.primary.hostPort, c.standbys[0]!.hostPort]],
    ['any', 'standby', (c) => [deadHost, c.standbys[0]!.hostPort, c.primary.hostPort]],
  ];
  for (const [attrs, expected, hosts] of cases) {
    it(`settles on the ${expected} with targetSessionAttrs ${attrs}, skipping hosts that refuse or do not match`, async () => {
      const { db } = open(config({ hosts: hosts(cluster), targetSessionAttrs: attrs }));
      await db.connect();
      const at = await whereAmI((sql) => db.driver().raw(sql));
      const node = expected === 'primary' ? cluster.primary : cluster.standbys[0]!;
      expect(at).to.deep.equal({ port: node.port, standby: expected === 'standby' });
    });
  }

  it('falls back to any server with prefer-standby when no standby answers', async () => {
    const { db } = open(
      config({ hosts: [deadHost, cluster.primary.hostPort], targetSessionAttrs: 'prefer-standby' }),
    );
    const at = await whereAmI((sql) => db.driver().raw(sql));
    expect(at).to.deep.equal({ port: cluster.primary.port, standby: false });
  });

  it('rejects with a ConnectionError naming each host when every host answers and none matches', async () => {
    const { db } = open(
      config({ hosts: [cluster.primary.hostPort, deadHost], targetSessionAttrs: 'standby' }),
    );
    const err = await db.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ConnectionError);
    const cause = (err as ConnectionError).cause as { code?: string; message: string };
    expect(cause.code).to.equal('NO_MATCHING_HOST');
    expect(cause.message).to.include(`${cluster.primary.hostPort}: not standby`);
    expect(cause.message).to.include(`${deadHost}: ECONNREFUSED`);
    expect(JSON.stringify(err)).not.to.include('test-superuser-secret');
  });
});

describe('PostgresDatabase failover across several hosts', function () {
  this.timeout(60_000);
  let cluster: StreamingCluster;
  const open = useDatabases();

  before(async () => {
    cluster = await startStreamingCluster([{}]);
  });
  after(async () => {
    await cluster?.destroy();
  });

  it('drops the dead primary, reconnects to the promoted standby and resumes writes without a restart', async () => {
    const [primary, standby] = [cluster.primary, cluster.standbys[0]!];
    await primary.query('create table ledger (id serial primary key, note text)');
    const { db, log } = open({
      ...postgresConfigFromUrl(new URL(primary.url())),
      hosts: [primary.hostPort, standby.hostPort],
      targetSessionAttrs: 'read-write',
      maxRetries: 0,
      timeout: 2_000,
    });
    // A standby-only pool of the same cluster: its connection is retired once the standby is promoted.
    const { db: reader } = open({
      ...postgresConfigFromUrl(new URL(primary.url())),
      hosts: [standby.hostPort],
      targetSessionAttrs: 'standby',
      maxRetries: 0,
    });
    const write = (note: string) =>
      db.withTransaction((trx) => trx('ledger').insert({ note }), {
        retry: { maxAttempts: 2, baseDelayMs: 10 },
      });
    await write('before');
    await reader.driver().raw('select 1');
    expect(reader.getConnectionStats().openConnections).to.equal(1);

    await primary.kill();
    const errors: unknown[] = [];
    const failed = await write('during').then(
      () => false,
      (err: unknown) => (errors.push(err), true),
    );
    expect(failed, 'a write with no primary fails').to.equal(true);
    expect(errors[0]).to.be.instanceOf(ConnectionError);

    await standby.promote();
    // Writes resume on the same PostgresDatabase: no restart, no reconfiguration.
    await waitFor(
      () =>
        write('after').then(
          () => true,
          (err: unknown) => (errors.push(err), false),
        ),
      20_000,
    );
    for (const err of errors) expect(err).to.be.instanceOf(ConnectionError);
    const notes = await standby.query<{ note: string }>('select note from ledger order by id');
    expect(notes.map((r) => r.note)).to.deep.equal(['before', 'after']);
    expect(log.text()).not.to.include('test-superuser-secret');

    // The standby-only pool hears in_hot_standby=off at its next statement and retires that connection.
    await reader.driver().raw('select 1');
    const fresh = await reader.connect().then(
      () => 'connected',
      (err: unknown) => ((err as ConnectionError).cause as { code?: string }).code,
    );
    expect(fresh).to.equal('NO_MATCHING_HOST');
  });
});
