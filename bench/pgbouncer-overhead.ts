/**
 * A quick measurement, not a benchmark of record: a small read-write transaction through
 * PgBouncer 1.18 in transaction pooling mode (`poolerMode: 'transaction'`) against the same
 * transaction straight to PostgreSQL, on a dedicated embedded server:
 *
 * - before: what `poolerMode: 'none'` (the only behaviour before the key existed) gets from
 *   PgBouncer at connect;
 * - round trips per transaction, counted on the wire by a TCP proxy in front of each target
 *   (simple queries plus extended-protocol Executes; pg sends one of either per round trip);
 * - latency of the transaction, sequential, median and p95 (no proxy on this path).
 *
 * Run: `npx tsx bench/pgbouncer-overhead.ts [transactions]` (needs `pgbouncer` installed:
 * `apt-get install -y pgbouncer`).
 */
import pino from 'pino';
import type { PostgresConfig } from '../src/config/app-config.js';
import { PostgresDatabase } from '../src/db/postgres-database.js';
import { TxManager } from '../src/db/tx/tx-manager.js';
import { startDedicatedServer } from '../test/support/embedded-test-server.js';
import { startPgBouncer, targetOfUrl } from '../test/support/pgbouncer.js';
import { queryOnce } from '../test/support/query-once.js';
import { TcpProxy } from '../test/support/tcp-proxy.js';
import { postgresConfigFromUrl } from '../test/support/test-database.js';

const silent = pino({ level: 'silent' });
const N = Number(process.argv[2] ?? 2_000);

type Target = { label: string; host: string; port: number; poolerMode: PostgresConfig['poolerMode'] };

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

async function main(): Promise<void> {
  const server = await startDedicatedServer();
  const bouncer = await startPgBouncer(targetOfUrl(server.url()), { poolSize: 2 });
  try {
    await queryOnce(server.url(), 'create table items (id bigserial primary key, v int not null)');
    const base = postgresConfigFromUrl(new URL(server.url()));
    const config = (t: Target): PostgresConfig => ({
      ...base,
      host: t.host,
      port: t.port,
      poolerMode: t.poolerMode,
      maxOpenConns: 2,
      maxRetries: 0,
    });

    const refused = new PostgresDatabase(
      config({ label: '', host: bouncer.host, port: bouncer.port, poolerMode: 'none' }),
      silent,
    );
    const before = await refused.connect().then(
      () => 'connected',
      (err: unknown) => (err as Error).message,
    );
    await refused.close();
    console.log(`before (poolerMode none through PgBouncer): ${before}\n`);

    const targets: Target[] = [
      { label: 'direct', host: '127.0.0.1', port: server.port, poolerMode: 'none' },
      { label: 'pgbouncer', host: bouncer.host, port: bouncer.port, poolerMode: 'transaction' },
    ];
    const small = (tm: TxManager, i: number): Promise<unknown> =>
      tm.withTransaction(async (trx) => {
        await trx('items').insert({ v: i });
      });
    const rows: string[] = [];
    for (const t of targets) {
      // Round trips, on the wire.
      const proxy = await TcpProxy.start({ host: t.host, port: t.port });
      const counted = new PostgresDatabase(config({ ...t, host: '127.0.0.1', port: proxy.port }), silent);
      await counted.connect();
      const ctm = new TxManager(counted, silent);
      await small(ctm, 0);
      const seen = proxy.statementsSeen;
      for (let i = 0; i < 100; i++) await small(ctm, i);
      const perTx = (proxy.statementsSeen - seen) / 100;
      await counted.close();
      await proxy.close();

      // Latency, no proxy.
      const pdb = new PostgresDatabase(config(t), silent);
      await pdb.connect();
      const tm = new TxManager(pdb, silent);
      for (let i = 0; i < 200; i++) await small(tm, i); // warm-up
      const ms: number[] = [];
      for (let i = 0; i < N; i++) {
        const started = performance.now();
        await small(tm, i);
        ms.push(performance.now() - started);
      }
      await pdb.close();
      ms.sort((a, b) => a - b);
      rows.push(
        `${t.label.padEnd(10)} ${String(perTx).padStart(12)} ${percentile(ms, 0.5).toFixed(3).padStart(10)} ${percentile(ms, 0.95).toFixed(3).padStart(10)}`,
      );
    }
    console.log(`small read-write transaction (BEGIN, INSERT, xid, COMMIT), ${N} sequential runs:`);
    console.log(
      `${'target'.padEnd(10)} ${'round trips'.padStart(12)} ${'median ms'.padStart(10)} ${'p95 ms'.padStart(10)}`,
    );
    for (const r of rows) console.log(r);
  } finally {
    await bouncer.stop();
    await server.destroy();
  }
}

await main();
