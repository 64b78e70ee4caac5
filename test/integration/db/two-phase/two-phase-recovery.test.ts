import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { TwoPhaseCommit } from '../../../../src/db/two-phase/two-phase-commit.js';
import { HealthService } from '../../../../src/health/health-service.js';
import type { HealthReport } from '../../../../src/db/database.js';
import { Metrics } from '../../../../src/observability/metrics.js';
import { captureLogger } from '../../../support/capture-logger.js';
import { parsePrometheusText, sampleValue } from '../../../support/prometheus-text.js';
import { useDatabases, waitFor } from '../../../support/postgres-database-helpers.js';
import { queryOnce } from '../../../support/query-once.js';
import { useTestDatabase } from '../../../support/test-database.js';

const COORDINATOR_SCRIPT = fileURLToPath(
  new URL('../../../support/two-phase-coordinator.ts', import.meta.url),
);

type FreezePoint = 'before-decision' | 'after-decision';

/**
 * Runs a coordinator in a child process until it freezes at `at`, then returns a function
 * that kills it with SIGKILL (no cleanup of any kind runs) and resolves once it has exited.
 */
async function frozenCoordinator(
  urls: { a: string; b: string; coordinator: string },
  at: FreezePoint,
  rowId: number,
): Promise<() => Promise<void>> {
  const child = spawn(process.execPath, ['--import', 'tsx', COORDINATOR_SCRIPT], {
    env: {
      ...process.env,
      PARTICIPANT_A_URL: urls.a,
      PARTICIPANT_B_URL: urls.b,
      COORDINATOR_URL: urls.coordinator,
      FREEZE_AT: at,
      ROW_ID: String(rowId),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit');
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('FROZEN')) resolve();
    });
    void exited.then(() => reject(new Error(`the coordinator exited before freezing:\n${output}`)));
  });
  return async () => {
    child.kill('SIGKILL');
    await exited;
  };
}

const byParticipant = (x: { participant: string }, y: { participant: string }): number =>
  x.participant.localeCompare(y.participant);

async function ledgerIds(url: string): Promise<number[]> {
  return (await queryOnce(url, 'select id from ledger order by id')).rows.map(
    (r) => (r as { id: number }).id,
  );
}

async function preparedGids(url: string): Promise<string[]> {
  const res = await queryOnce(
    url,
    "select gid from pg_prepared_xacts where database = current_database() and gid like 'pgdl2pc%' order by gid",
  );
  return res.rows.map((r) => (r as { gid: string }).gid);
}

async function decisionRecords(url: string): Promise<number> {
  const res = await queryOnce(url, 'select count(*)::int as n from pgdl_two_phase_decisions');
  return (res.rows[0] as { n: number }).n;
}

describe('TwoPhaseCommit.recover() after a coordinator killed between PREPARE and COMMIT PREPARED', function () {
  this.timeout(60_000);
  const dbA = useTestDatabase();
  const dbB = useTestDatabase();
  const dbC = useTestDatabase();
  const open = useDatabases();

  // A failed test must not leave prepared transactions behind: they would block dropping the databases.
  afterEach(async () => {
    for (const db of [dbA(), dbB()])
      for (const gid of await preparedGids(db.url)) await queryOnce(db.url, `rollback prepared '${gid}'`);
  });

  before(async () => {
    const schema = 'create table ledger (id int primary key, note text not null)';
    await Promise.all([queryOnce(dbA().url, schema), queryOnce(dbB().url, schema)]);
  });

  async function coordinatorOf(metrics?: Metrics): Promise<TwoPhaseCommit> {
    const [a, b, c] = [dbA(), dbB(), dbC()].map((d) => open(d.config({ maxOpenConns: 3 })).db);
    await Promise.all([a!.connect(), b!.connect(), c!.connect()]);
    const tpc = new TwoPhaseCommit(
      { a: a!, b: b! },
      { logger: captureLogger().logger, coordinator: c!, ...(metrics ? { metrics } : {}) },
    );
    await tpc.recover(); // creates the decision table before the child uses it
    return tpc;
  }

  const urls = (): { a: string; b: string; coordinator: string } => ({
    a: dbA().url,
    b: dbB().url,
    coordinator: dbC().url,
  });

  it('leaves them while the coordinator is deciding, rolls them back once it died undecided, and is idempotent', async () => {
    const tpc = await coordinatorOf();
    const kill = await frozenCoordinator(urls(), 'before-decision', 1);
    try {
      const gidA = await preparedGids(dbA().url);
      expect(gidA).to.have.length(1);
      expect(await preparedGids(dbB().url)).to.have.length(1);
      // The coordinator's transaction is still open: nobody may decide for it.
      const meanwhile = await tpc.recover();
      expect(meanwhile.committed).to.deep.equal([]);
      expect(meanwhile.rolledBack).to.deep.equal([]);
      expect(meanwhile.pending).to.have.length(2);
      const inDoubt = (await tpc.inDoubt()).sort(byParticipant);
      expect(inDoubt.map((t) => [t.participant, t.decided])).to.deep.equal([
        ['a', false],
        ['b', false],
      ]);
      expect(inDoubt[0]!.gid).to.equal(gidA[0]);
    } finally {
      await kill();
    }
    // The server aborts the dead coordinator's transaction once it sees the socket closed.
    let result = await tpc.recover();
    await waitFor(async () => {
      if (result.rolledBack.length > 0) return true;
      result = await tpc.recover();
      return false;
    });
    expect(result.rolledBack).to.have.length(2);
    expect(result.committed).to.deep.equal([]);
    expect(await ledgerIds(dbA().url)).to.deep.equal([]);
    expect(await ledgerIds(dbB().url)).to.deep.equal([]);
    expect(await preparedGids(dbA().url)).to.deep.equal([]);
    expect(await preparedGids(dbB().url)).to.deep.equal([]);
    expect(await tpc.recover()).to.deep.equal({ committed: [], rolledBack: [], pending: [] });
  });

  it('commits them once the decision was recorded, removes the record, and is idempotent; the in-doubt gauges follow', async () => {
    const metrics = new Metrics();
    const scrape = async (): Promise<ReturnType<typeof parsePrometheusText>> =>
      parsePrometheusText(await metrics.registry.metrics());
    const tpc = await coordinatorOf(metrics);
    const none = await scrape();
    expect(sampleValue(none, 'db_two_phase_in_doubt')).to.equal(0);
    expect(sampleValue(none, 'db_two_phase_in_doubt_oldest_seconds')).to.equal(0);
    const kill = await frozenCoordinator(urls(), 'after-decision', 2);
    await kill();
    const stuck = await scrape();
    expect(sampleValue(stuck, 'db_two_phase_in_doubt', { decided: 'true' })).to.equal(2);
    expect(sampleValue(stuck, 'db_two_phase_in_doubt', { decided: 'false' })).to.equal(0);
    expect(sampleValue(stuck, 'db_two_phase_in_doubt_oldest_seconds')).to.be.above(0);
    expect(await ledgerIds(dbA().url)).to.deep.equal([]); // prepared, not committed: invisible
    expect((await tpc.inDoubt()).sort(byParticipant).map((t) => [t.participant, t.decided])).to.deep.equal([
      ['a', true],
      ['b', true],
    ]);
    expect(await decisionRecords(dbC().url)).to.equal(1);
    const result = await tpc.recover();
    expect(result.committed).to.have.length(2);
    expect(result.rolledBack).to.deep.equal([]);
    expect(await ledgerIds(dbA().url)).to.deep.equal([2]);
    expect(await ledgerIds(dbB().url)).to.deep.equal([2]);
    expect(await preparedGids(dbA().url)).to.deep.equal([]);
    expect(await decisionRecords(dbC().url)).to.equal(0);
    expect(await tpc.recover()).to.deep.equal({ committed: [], rolledBack: [], pending: [] });
    const resolved = await scrape();
    expect(sampleValue(resolved, 'db_two_phase_in_doubt')).to.equal(0);
    expect(sampleValue(resolved, 'db_two_phase_in_doubt_oldest_seconds')).to.equal(0);
  });

  it("leaves prepared transactions alone that are not this coordinator's", async () => {
    const tpc = await coordinatorOf();
    const foreign = ['pgdl2pc_00000000_42_0', 'someone_else'];
    for (const gid of foreign)
      await queryOnce(
        dbA().url,
        `begin; insert into ledger values (${foreign.indexOf(gid) + 10}, 'x'); prepare transaction '${gid}'`,
      );
    try {
      expect(await tpc.recover()).to.deep.equal({ committed: [], rolledBack: [], pending: [] });
      expect(await tpc.inDoubt()).to.deep.equal([]);
      const left = await queryOnce(dbA().url, 'select gid from pg_prepared_xacts order by gid');
      expect(left.rows.map((r) => (r as { gid: string }).gid)).to.include.members(foreign);
    } finally {
      for (const gid of foreign) await queryOnce(dbA().url, `rollback prepared '${gid}'`);
    }
  });

  it('reports in-doubt transactions older than the threshold in /health, and none once recovered', async () => {
    const tpc = await coordinatorOf();
    const kill = await frozenCoordinator(urls(), 'after-decision', 3);
    await kill();
    const up = { status: 'up' } as HealthReport;
    const health = (staleAfterMs: number): HealthService =>
      new HealthService({
        db: { health: () => Promise.resolve(up) },
        loop: { last: up },
        breaker: { state: 'closed' },
        twoPhase: { inDoubt: (o) => tpc.inDoubt(o), staleAfterMs },
      });
    const stale = (await health(0).report()).twoPhaseCommit as { stale: Array<{ participant: string }> };
    expect(stale.stale.map((t) => t.participant).sort()).to.deep.equal(['a', 'b']);
    expect((await health(3_600_000).report()).twoPhaseCommit).to.deep.equal({
      staleAfterMs: 3_600_000,
      stale: [],
    });
    await tpc.recover();
    expect((await health(0).report()).twoPhaseCommit).to.deep.equal({ staleAfterMs: 0, stale: [] });
  });
});
