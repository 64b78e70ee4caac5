/**
 * A quick measurement, not a benchmark of record, on a real streaming cluster made from the
 * embedded binaries (test/support/streaming-standby.ts: a primary and two hot standbys, loopback):
 *
 * - failover: a read-write pool over `hosts: [primary, standby]`, writes every 10 ms; the
 *   primary is killed (immediate shutdown) and the standby promoted at once; reported: time
 *   from the kill to the first write that succeeds again, and from promotion to it;
 * - replica reads against primary reads: `withReadOnlyTransaction` of one indexed SELECT,
 *   sequential, median and p95, nothing written (no read-your-writes wait);
 * - a write-then-read loop with read-your-writes on (each read must see the write just made):
 *   the share of reads the replica served and the added latency of the wait.
 *
 * Run: `npx tsx bench/scale-out-replicas.ts [reads]`.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { PostgresConfig } from '../src/config/app-config.js';
import { PostgresDatabase } from '../src/db/postgres-database.js';
import { Metrics } from '../src/observability/metrics.js';
import { metricValue } from '../test/support/metric-value.js';
import { startStreamingCluster } from '../test/support/streaming-standby.js';
import { postgresConfigFromUrl } from '../test/support/test-database.js';

const silent = pino({ level: 'silent' });
const N = Number(process.argv[2] ?? 1_000);

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(2);
  return `median ${at(0.5)} ms, p95 ${at(0.95)} ms (n=${s.length})`;
}

const cluster = await startStreamingCluster([{ name: 'replica' }, { name: 'failover' }]);
try {
  const [replica, standby] = cluster.standbys as [(typeof cluster.standbys)[0], (typeof cluster.standbys)[0]];
  await cluster.primary.query('create table notes (id serial primary key, body text not null)');
  await cluster.primary.query("insert into notes (body) select 'n' || g from generate_series(1, 1000) g");
  await cluster.waitForReplay();
  const base: PostgresConfig = {
    ...postgresConfigFromUrl(new URL(cluster.primary.url())),
    healthCheckInterval: 0,
  };

  // Replica reads against primary reads, nothing written.
  {
    const metrics = new Metrics();
    const db = new PostgresDatabase({ ...base, replicas: [replica.hostPort] }, silent, { metrics });
    await db.connect();
    const read = (target: 'primary' | 'replica') =>
      db.txManager.withReadOnlyTransaction((trx) => trx('notes').where({ id: 500 }).first(), { target });
    for (let i = 0; i < 50; i++) await Promise.all([read('primary'), read('replica')]); // warm both pools
    const times: Record<string, number[]> = { primary: [], replica: [] };
    for (let i = 0; i < N; i++)
      for (const target of ['primary', 'replica'] as const) {
        const t = performance.now();
        await read(target);
        times[target]!.push(performance.now() - t);
      }
    console.log(`read on the primary:  ${stats(times.primary!)}`);
    console.log(`read on the replica:  ${stats(times.replica!)}`);

    // Write, then read with read-your-writes: the replica serves it once it has replayed the write.
    const before = await metricValue(metrics.replicaReads, { target: replica.hostPort });
    const fallbacksBefore = await metricValue(metrics.replicaFallbacks);
    // A second database on the same replica that wrote nothing itself: its reads do not wait (no RYW for it).
    const naive = new PostgresDatabase({ ...base, replicas: [replica.hostPort] }, silent);
    const reads: number[] = [];
    let missed = 0;
    let naiveMissed = 0;
    for (let i = 0; i < N; i++) {
      const [row] = await db.withTransaction((trx) =>
        trx('notes')
          .insert({ body: `w${i}` })
          .returning<Array<{ id: number }>>('id'),
      );
      const t = performance.now();
      const seen: unknown = await db.txManager.withReadOnlyTransaction(
        (trx) => trx('notes').where({ id: row!.id }).first(),
        {
          target: 'replica',
        },
      );
      reads.push(performance.now() - t);
      if (!seen) missed++;
      const [next] = await db.withTransaction((trx) =>
        trx('notes')
          .insert({ body: `v${i}` })
          .returning<Array<{ id: number }>>('id'),
      );
      const naiveSeen: unknown = await naive.txManager.withReadOnlyTransaction(
        (trx) => trx('notes').where({ id: next!.id }).first(),
        { target: 'replica' },
      );
      if (!naiveSeen) naiveMissed++;
    }
    await naive.close();
    const served = (await metricValue(metrics.replicaReads, { target: replica.hostPort })) - before;
    const fellBack = (await metricValue(metrics.replicaFallbacks)) - fallbacksBefore;
    console.log(
      `write-then-read (RYW): ${served}/${N} reads on the replica (${((100 * served) / N).toFixed(1)} %), ` +
        `${fellBack} on the primary, ${missed} missed the write; read ${stats(reads)}`,
    );
    console.log(
      `the same read without RYW (another database, no wait): ${naiveMissed}/${N} missed the write`,
    );
    await db.close();
  }

  // Failover: kill the primary, promote the standby, time the first successful write.
  {
    const db = new PostgresDatabase(
      {
        ...base,
        hosts: [cluster.primary.hostPort, standby.hostPort],
        targetSessionAttrs: 'read-write',
        timeout: 1_000,
      },
      silent,
    );
    await db.connect();
    let stop = false;
    let firstOkAfterKill: number | undefined;
    let killedAt = Infinity;
    let failures = 0;
    const writer = (async () => {
      while (!stop) {
        const started = performance.now();
        try {
          await db.withTransaction((trx) => trx('notes').insert({ body: 'f' }), { retry: false });
          // Only a write begun after the kill proves the new primary.
          if (started > killedAt && firstOkAfterKill === undefined) firstOkAfterKill = performance.now();
        } catch {
          failures++;
        }
        await sleep(10);
      }
    })();
    await sleep(300);
    killedAt = performance.now();
    await cluster.primary.kill();
    const promoting = performance.now();
    await standby.promote();
    const promoted = performance.now();
    while (firstOkAfterKill === undefined) await sleep(5);
    stop = true;
    await writer;
    console.log(
      `failover: first write begun after the kill succeeded ${(firstOkAfterKill - killedAt).toFixed(0)} ms after it ` +
        `(kill and promotion included; pg_promote(wait) returned after ${(promoted - promoting).toFixed(0)} ms, ` +
        `it polls every 100 ms), ${failures} failed writes in between (ConnectionError)`,
    );
    await db.close();
  }
} finally {
  await cluster.destroy();
}
