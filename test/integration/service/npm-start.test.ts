import { expect } from 'chai';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { embeddedPassword } from '../../../src/db/embedded/embedded-password.js';
import { freePort } from '../../support/free-port.js';
import { queryOnce } from '../../support/query-once.js';
import { waitFor } from '../../support/service-fixture.js';
import {
  memoryOf,
  postChunks,
  startServiceProcess,
  type ServiceProcess,
} from '../../support/service-process.js';

const IMPORT_ROWS = 100_000;
const SHUTDOWN_TIMEOUT_MS = 10_000;
const MB = 1024 * 1024;

/** NDJSON of `count` users, produced lazily in chunks of 1,000 rows; counts the bytes it made. */
function* ndjsonUsers(
  tag: string,
  count: number,
  bytes: { n: number },
  bad?: { line: number },
): Generator<string> {
  // ~300-byte rows (names near their 200-character limit) make a ~30 MB body: holding it
  // whole would raise the service's RSS by at least that much.
  const pad = 'x'.repeat(185);
  const local = 'e'.repeat(40);
  let chunk = '';
  for (let i = 1; i <= count; i++) {
    chunk +=
      bad?.line === i
        ? `{"email":"not an email","name":"Bad ${i}"}\n`
        : `{"email":"${tag}-${i}-${local}@example.com","name":"User ${i} ${pad}"}\n`;
    if (i % 1_000 === 0 || i === count) {
      bytes.n += Buffer.byteLength(chunk);
      yield chunk;
      chunk = '';
    }
  }
}

/** A promise with its resolver, to hold a generator at a point until the test says go. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/** Yields `chunks`, stopping before chunk `at` (0-based): calls `reached`, then waits for `resume`. */
async function* pausedHalfWay(
  chunks: Iterable<string>,
  at: number,
  reached: () => void,
  resume: Promise<void>,
): AsyncGenerator<string> {
  let i = 0;
  for (const chunk of chunks) {
    if (i++ === at) {
      reached();
      await resume;
    }
    yield chunk;
  }
}

describe('npm start (the service as a process)', function () {
  this.timeout(180_000);
  let root: string;
  let env: Record<string, string>;
  let svc: ServiceProcess | undefined;
  let dbPort: number;

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'pgdl-service-'));
    chmodSync(root, 0o755); // the embedded server runs as "postgres" when we are root
    dbPort = await freePort();
    env = {
      APP_ENV: 'development',
      DB_EMBEDDED_DATA_DIR: path.join(root, 'data'),
      DB_PORT: String(dbPort),
      SERVER_PORT: String(await freePort()),
      SERVER_SHUTDOWN_TIMEOUT: `${SHUTDOWN_TIMEOUT_MS}ms`,
      DB_HEALTH_CHECK_INTERVAL: '500ms',
      LOG_PRETTY: 'false',
      LOG_LEVEL: 'info',
    };
  });

  after(async () => {
    // The whole process group: npm, tsx, node and an embedded server a forced exit left behind.
    if (svc) {
      try {
        process.kill(-svc.child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      await svc.exited;
    }
    await new Promise((r) => setTimeout(r, 200));
    rmSync(root, { recursive: true, force: true });
  });

  async function userCount(): Promise<number> {
    const server = {
      host: '127.0.0.1',
      port: dbPort,
      user: 'app',
      password: embeddedPassword(env.DB_EMBEDDED_DATA_DIR!).password,
      database: 'app',
    };
    const { rows } = await queryOnce<{ n: string }>(server, 'select count(*) as n from users');
    return Number(rows[0]!.n);
  }

  async function startAndWaitReady(): Promise<string> {
    svc = startServiceProcess(env);
    const url = await svc.url();
    await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, 30_000, '/readyz 200');
    return url;
  }

  it('starts on an empty data dir, streams an import of 100,000 users into COPY before the body has arrived, and rejects a bad import by line', async () => {
    expect(existsSync(env.DB_EMBEDDED_DATA_DIR!)).to.equal(false);
    const url = await startAndWaitReady();
    expect(svc!.logs.map((l) => l.msg)).to.include.members([
      'initialising embedded PostgreSQL data directory',
      'migrations applied',
    ]);

    const pid = svc!.servicePid();
    const before = memoryOf(pid);
    const sent = { n: 0 };
    // The upload stops half way until the test has seen rows arrive in the server's COPY: a
    // service that buffered the body could not have started the COPY yet. This proves the
    // streaming itself; RSS is only reported (memory targets belong to benchmarks, and RSS
    // moves with GC timing on a loaded machine).
    const half = gate();
    const resume = gate();
    const ok = postChunks(
      `${url}/users/import`,
      'application/x-ndjson',
      pausedHalfWay(ndjsonUsers('bulk', IMPORT_ROWS, sent), IMPORT_ROWS / 1_000 / 2, half.open, resume.wait),
    );
    await half.wait;
    const bytesAtHalf = sent.n;
    let copiedWhileHalfSent = 0;
    await waitFor(
      async () => (copiedWhileHalfSent = await copyProgress()) > 0,
      10_000,
      'rows in the COPY while the body is half sent',
    );
    expect(sent.n, 'no more of the body was sent while waiting').to.equal(bytesAtHalf);
    resume.open();
    const res = await ok.response;
    expect(res.status, res.body).to.equal(201);
    expect(JSON.parse(res.body)).to.deep.equal({ imported: IMPORT_ROWS });
    const after = memoryOf(pid);
    expect(await userCount()).to.equal(IMPORT_ROWS);
    expect(copiedWhileHalfSent)
      .to.be.above(0)
      .and.at.most(IMPORT_ROWS / 2);

    const bad = postChunks(
      `${url}/users/import`,
      'application/x-ndjson',
      ndjsonUsers('rejected', IMPORT_ROWS, { n: 0 }, { line: 77_777 }),
    );
    const rejected = await bad.response;
    expect(rejected.status, rejected.body).to.equal(400);
    expect(JSON.parse(rejected.body)).to.include({ code: 'VALIDATION', line: 77_777 });
    expect(await userCount()).to.equal(IMPORT_ROWS);

    console.log(
      `      import of ${IMPORT_ROWS} users (~${(sent.n / MB).toFixed(0)} MB NDJSON): ${copiedWhileHalfSent} rows in COPY ` +
        `with half the body sent; service RSS ${(before.rss / MB).toFixed(0)} MB before, ` +
        `peak ${(after.peak / MB).toFixed(0)} MB (process lifetime), growth ${((after.peak - before.rss) / MB).toFixed(0)} MB`,
    );
  });

  /** Rows the server's running COPY has processed so far (pg_stat_progress_copy), 0 if none runs. */
  async function copyProgress(): Promise<number> {
    const { rows } = await queryOnce<{ n: string | null }>(
      {
        host: '127.0.0.1',
        port: dbPort,
        user: 'app',
        password: embeddedPassword(env.DB_EMBEDDED_DATA_DIR!).password,
        database: 'app',
      },
      'select max(tuples_processed) as n from pg_stat_progress_copy',
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** Starts a ~2 s import (2,000 rows trickled in 20 chunks, 100 ms apart) and waits until it is in flight. */
  async function slowImport(url: string, tag: string): Promise<ReturnType<typeof postChunks>> {
    const chunks = Array.from({ length: 20 }, (_, c) =>
      Array.from({ length: 100 }, (_, i) => `{"email":"${tag}-${c}-${i}@example.com","name":"Slow"}\n`).join(
        '',
      ),
    );
    const seen = svc!.logs.filter((l) => l.msg === 'incoming request').length;
    const slow = postChunks(`${url}/users/import`, 'application/x-ndjson', chunks, 100);
    await waitFor(
      async () => Promise.resolve(svc!.logs.filter((l) => l.msg === 'incoming request').length > seen),
      5_000,
      'the slow request to arrive',
    );
    await new Promise((r) => setTimeout(r, 300));
    return slow;
  }

  it('finishes a slow in-flight request on SIGTERM, exits 0 within the shutdown timeout, and a second start reuses the data', async () => {
    const url = await svc!.url();
    const rowsBefore = await userCount();
    const slow = await slowImport(url, 'slow');

    // The service process gets the signal, as in a container (node is PID 1 there). Through
    // `npm start` it would not arrive: npm passes it to `sh -c`, which dies of it.
    const signalledAt = Date.now();
    process.kill(svc!.servicePid(), 'SIGTERM');
    const res = await slow.response;
    expect(res.status, svc!.output()).to.equal(201);
    expect(JSON.parse(res.body)).to.deep.equal({ imported: 2_000 });
    const code = await svc!.exited;
    const exitMs = Date.now() - signalledAt;
    expect(code, svc!.output()).to.equal(0);
    expect(exitMs, svc!.output()).to.be.below(SHUTDOWN_TIMEOUT_MS);
    const msgs = svc!.logs.map((l) => l.msg);
    expect(msgs).to.include.members([
      'signal received: shutting down gracefully',
      'shutting down: readiness off, draining requests',
      'embedded PostgreSQL stopped',
      'shutdown complete',
    ]);
    console.log(
      `      SIGTERM -> exit 0 in ${exitMs} ms, the slow import (2,000 rows over ~2 s) answered 201`,
    );

    const second = await startAndWaitReady();
    expect(svc!.logs.map((l) => l.msg)).not.to.include('initialising embedded PostgreSQL data directory');
    expect(svc!.logs.map((l) => l.msg)).to.include('schema is up to date');
    expect(await userCount()).to.equal(rowsBefore + 2_000);
    const page = await fetch(`${second}/users?limit=1`);
    expect(page.status).to.equal(200);
    expect(((await page.json()) as { items: Array<{ email: string }> }).items[0]?.email).to.match(
      /^bulk-1-e+@example\.com$/,
    );
  });

  it('exits 1 at once on a second signal during shutdown', async () => {
    const url = await svc!.url();
    const slow = await slowImport(url, 'forced');
    // The forced exit cuts this request off: take its failure now, not after the exit.
    const slowStatus = slow.response.then(
      (r) => r.status,
      () => 0,
    );
    const pid = svc!.servicePid();
    process.kill(pid, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 700)); // past the window in which repeats are duplicates
    const forcedAt = Date.now();
    process.kill(pid, 'SIGTERM');
    expect(await svc!.exited, svc!.output()).to.equal(1);
    expect(Date.now() - forcedAt).to.be.below(2_000);
    expect(svc!.logs.map((l) => l.msg)).to.include('second signal during shutdown: exiting now');
    expect(await slowStatus).not.to.equal(201);
  });
});
