import { expect } from 'chai';
import type { PostgresConfig } from '../../../../src/config/app-config.js';
import { TxOptionsError } from '../../../../src/db/errors/errors.js';
import type { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import pino from 'pino';
import { TxManager } from '../../../../src/db/tx/tx-manager.js';
import { metricValue } from '../../../support/metric-value.js';
import { useDatabases, waitFor } from '../../../support/postgres-database-helpers.js';
import { parsePrometheusText } from '../../../support/prometheus-text.js';
import {
  startStreamingCluster,
  type ClusterNode,
  type StreamingCluster,
} from '../../../support/streaming-standby.js';
import { postgresConfigFromUrl } from '../../../support/test-database.js';

/** recovery_min_apply_delay of the lagging replica, ms. */
const APPLY_DELAY_MS = 1_500;

/** Reads the notes on wherever the replica read runs, and which server that was. */
async function readNotes(db: PostgresDatabase, opts: { after?: string } = {}) {
  return db.txManager.withReadOnlyTransaction(
    async (trx) => {
      const where = await trx.raw<{ rows: Array<{ port: number }> }>('select inet_server_port() as port');
      const notes = (await trx('notes').select('body').orderBy('id')).map((r: { body: string }) => r.body);
      return { port: where.rows[0]!.port, notes };
    },
    { target: 'replica', ...opts },
  );
}

describe('PostgresDatabase read replicas (read-your-writes)', function () {
  this.timeout(60_000);
  let cluster: StreamingCluster;
  let lagged: ClusterNode;
  let fast: ClusterNode;
  let spare: ClusterNode;
  const open = useDatabases();
  const config = (replicas: ClusterNode[], overrides: Partial<PostgresConfig> = {}): PostgresConfig => ({
    ...postgresConfigFromUrl(new URL(cluster.primary.url())),
    replicas: replicas.map((r) => r.hostPort),
    replicaWaitTimeout: 5_000,
    healthCheckInterval: 0, // no background check: each test drives the states itself
    ...overrides,
  });

  before(async () => {
    cluster = await startStreamingCluster([
      { name: 'lagged', applyDelayMs: APPLY_DELAY_MS },
      { name: 'fast' },
      { name: 'spare' },
    ]);
    [lagged, fast, spare] = cluster.standbys as [ClusterNode, ClusterNode, ClusterNode];
    await cluster.primary.query('create table notes (id serial primary key, body text not null)');
    // Written by a client of no PostgresDatabase: no read-your-writes covers it, so wait here.
    await cluster.waitForReplay();
  });
  after(async () => {
    await cluster?.destroy();
  });
  afterEach(async () => {
    await cluster.primary.query('truncate notes');
  });

  it('runs on a replica at once when nothing was written yet', async () => {
    const { db, metrics } = open(config([fast]));
    await db.connect();
    const read = await readNotes(db);
    expect(read.port).to.equal(fast.port);
    expect(db.txManager.lastCommitToken()).to.equal(undefined);
    expect(await metricValue(metrics.replicaReads, { target: fast.hostPort })).to.equal(1);
  });

  it('waits for a lagging replica to replay the commit it acknowledged, then reads there', async () => {
    const { db } = open(config([lagged]));
    await db.withTransaction((trx) => trx('notes').insert({ body: 'mine' }));
    const token = db.txManager.lastCommitToken();
    expect(token).to.match(/^[0-9A-F]+\/[0-9A-F]+$/);
    const read = await readNotes(db);
    expect(read).to.deep.equal({ port: lagged.port, notes: ['mine'] });
  });

  it('falls back to the primary when the replica has not replayed the commit within replicaWaitTimeout', async () => {
    const { db, metrics } = open(config([lagged], { replicaWaitTimeout: 100 }));
    await db.withTransaction((trx) => trx('notes').insert({ body: 'mine' }));
    const read = await readNotes(db);
    expect(read).to.deep.equal({ port: cluster.primary.port, notes: ['mine'] });
    expect(await metricValue(metrics.replicaFallbacks, { reason: 'lag' })).to.equal(1);
    expect(await metricValue(metrics.replicaReads, { target: 'primary' })).to.equal(1);
    expect(db.config.replicas).to.deep.equal([lagged.hostPort]);
  });

  it('never misses an acknowledged commit in a write-then-read loop over a lagging and a fast replica', async () => {
    const { db, metrics } = open(config([lagged, fast]));
    for (let i = 0; i < 15; i++) {
      await db.withTransaction((trx) => trx('notes').insert({ body: `n${i}` }));
      const { notes } = await readNotes(db);
      expect(notes.at(-1), `read ${i}`).to.equal(`n${i}`);
      expect(notes).to.have.length(i + 1);
    }
    const onReplicas = await metricValue(metrics.replicaReads, { target: fast.hostPort });
    expect(onReplicas, 'the fast replica served some reads').to.be.greaterThan(0);
  });

  it("makes another database's replica read wait for a commit token it was given", async () => {
    const { db: writer } = open(config([lagged]));
    const { db: reader } = open(config([lagged]));
    await writer.withTransaction((trx) => trx('notes').insert({ body: 'from the writer' }));
    const token = writer.txManager.lastCommitToken()!;
    const read = await readNotes(reader, { after: token });
    expect(read).to.deep.equal({ port: lagged.port, notes: ['from the writer'] });
  });

  it('gives a second TxManager built on the database its replicas, commit positions and counters', async () => {
    const { db, metrics } = open(config([lagged]));
    const second = new TxManager(db, pino({ level: 'silent' }));
    // Written through the database's own manager: the second one's replica read must see it.
    await db.withTransaction((trx) => trx('notes').insert({ body: 'via db' }));
    expect(second.lastCommitToken()).to.equal(db.txManager.lastCommitToken());
    const read = await second.withReadOnlyTransaction(
      async (trx) => {
        const { rows } = await trx.raw<{ rows: Array<{ standby: boolean; port: number }> }>(
          'select pg_is_in_recovery() as standby, inet_server_port() as port',
        );
        const notes = (await trx('notes').select('body')).map((r: { body: string }) => r.body);
        return { ...rows[0]!, notes };
      },
      { target: 'replica' },
    );
    expect(read).to.deep.equal({ standby: true, port: lagged.port, notes: ['via db'] });
    expect(second.metrics).to.equal(metrics);
    expect(await metricValue(metrics.replicaReads, { target: lagged.hostPort })).to.equal(1);
  });

  it('rejects target and after on a read-write transaction, and a malformed token, before any connection', async () => {
    const { db } = open(config([fast]));
    const attempt = (opts: object) =>
      db
        .withTransaction(() => Promise.resolve(1), opts)
        .then(
          () => undefined,
          (err: unknown) => err,
        );
    const onWrite = await attempt({ target: 'replica' });
    expect(onWrite).to.be.instanceOf(TxOptionsError);
    expect((onWrite as Error).message).to.include('target is for read-only transactions only');
    const badToken = await attempt({ readOnly: true, target: 'replica', after: 'yesterday' });
    expect((badToken as Error).message).to.include('after must be a commit token');
    expect(db.getConnectionStats().openConnections).to.equal(0);
  });

  it('skips a stopped replica, reports it down in health() and metrics, and reads on the primary', async () => {
    const { db, metrics } = open(config([spare]));
    await db.connect();
    expect((await readNotes(db)).port).to.equal(spare.port);
    await spare.stop();
    try {
      const first = await readNotes(db);
      expect(first.port).to.equal(cluster.primary.port);
      const second = await readNotes(db);
      expect(second.port).to.equal(cluster.primary.port);
      expect(await metricValue(metrics.replicaFallbacks, { reason: 'unavailable' })).to.equal(2);
      const report = await db.health();
      expect(report.status).to.equal('up');
      expect(report.replicas).to.have.length(1);
      expect(report.replicas![0]).to.include({ replica: spare.hostPort, state: 'down' });
      const text = await metrics.registry.metrics();
      expect(text).to.include(`db_replica_up{replica="${spare.hostPort}"} 0`);
    } finally {
      await spare.start();
    }
    // Back: the next check finds it a standby again, and reads return to it.
    const back = await db.health();
    expect(back.replicas![0]).to.include({ state: 'up' });
    expect((await readNotes(db)).port).to.equal(spare.port);
  });

  it('shows each replica state and lag in health() and the metrics', async () => {
    const { db, metrics } = open(config([lagged, fast]));
    // Replay paused on the lagged replica: the commit below reaches it but is not replayed
    // until resumed, so it really lags however long the check takes (its apply delay alone
    // would hold only 1.5 s).
    await lagged.query('select pg_wal_replay_pause()');
    try {
      await waitFor(
        async () =>
          (await lagged.query<{ s: string }>('select pg_get_wal_replay_pause_state() as s'))[0]?.s ===
          'paused',
        10_000,
      );
      await db.withTransaction((trx) => trx('notes').insert({ body: 'x' }));
      const report = await db.health();
      const byName = new Map(report.replicas!.map((r) => [r.replica, r]));
      expect(byName.get(fast.hostPort)).to.include({ state: 'up' });
      expect(byName.get(lagged.hostPort)!.lagBytes).to.be.a('number');
      expect(byName.get(lagged.hostPort)!.lagBytes, 'lag of the paused replica, bytes').to.be.above(0);
      expect(byName.get(lagged.hostPort)!.replayLsn).to.match(/^[0-9A-F]+\/[0-9A-F]+$/);
      const text = await metrics.registry.metrics();
      expect(text).to.include(`db_replica_lag_bytes{replica="${lagged.hostPort}"}`);
      expect(text).to.include(`db_replica_up{replica="${fast.hostPort}"} 1`);
      const lagGauge = parsePrometheusText(text).find(
        (m) => m.name === 'db_replica_lag_bytes' && m.labels.replica === lagged.hostPort,
      );
      expect(lagGauge?.value, 'db_replica_lag_bytes of the paused replica').to.be.above(0);
    } finally {
      await lagged.query('select pg_wal_replay_resume()');
    }
  });

  // Last: the promotion takes `fast` out of the cluster for good.
  it('detects a promoted replica, stops reading there and reports it promoted', async () => {
    const { db, metrics } = open(config([fast]));
    expect((await readNotes(db)).port).to.equal(fast.port);
    await fast.promote();
    await db.withTransaction((trx) => trx('notes').insert({ body: 'after promotion' }));
    const report = await db.health();
    expect(report.replicas![0]).to.include({ replica: fast.hostPort, state: 'promoted' });
    const read = await readNotes(db);
    expect(read).to.deep.equal({ port: cluster.primary.port, notes: ['after promotion'] });
    expect(await metricValue(metrics.replicaFallbacks, { reason: 'unavailable' })).to.equal(1);
  });
});
