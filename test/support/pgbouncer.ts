import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { freePort } from './free-port.js';
import { testServer } from './root-hooks.js';

/** Where Debian's package puts the binary (also looked up on PATH). */
const DEBIAN_BINARY = '/usr/sbin/pgbouncer';

/** The server PgBouncer pools for, and the role it logs in as (tests use the superuser). */
export interface PgBouncerTarget {
  host: string;
  port: number;
  user: string;
  password: string;
}

/** A running PgBouncer in transaction pooling mode on 127.0.0.1. */
export interface PgBouncer {
  host: '127.0.0.1';
  port: number;
  /** The server connections per database/user pair (`default_pool_size`). */
  poolSize: number;
  /** Runs one statement on PgBouncer's admin console (`SHOW SERVERS`, ...), simple protocol. */
  admin(command: string): Promise<Array<Record<string, unknown>>>;
  /** PgBouncer's own log so far (for failure messages). */
  log(): string;
  /** Stops PgBouncer (immediate shutdown) and deletes its directory. Idempotent. */
  stop(): Promise<void>;
}

/** The pgbouncer binary, or an Error saying how to install it. */
function pgbouncerBinary(): string {
  try {
    const found = execFileSync('sh', ['-c', 'command -v pgbouncer'], { encoding: 'utf8' }).trim();
    if (found) return found;
  } catch {
    // not on PATH
  }
  if (existsSync(DEBIAN_BINARY)) return DEBIAN_BINARY;
  throw new Error(
    'pgbouncer is not installed, and the PgBouncer suite needs a real one: ' +
      'run `apt-get update && apt-get install -y pgbouncer` (Debian; CI does it in .ci/run).',
  );
}

/** The target of a `postgres://user:password@host:port/db` URL. */
export function targetOfUrl(url: string): PgBouncerTarget {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
  };
}

/**
 * Starts PgBouncer in front of `target` on a free loopback port: `pool_mode = transaction`,
 * `default_pool_size = poolSize` (default 2, so that clients really share server connections),
 * every database name forwarded (`* =`), clients trusted on loopback (`auth_type = trust`; the
 * userlist holds the password PgBouncer itself logs in to the server with). PgBouncer refuses
 * to run as root: when we are root it runs as the `postgres` OS user (the embedded server
 * creates it). Fails, with PgBouncer's log, when it does not listen within 5 s.
 */
export async function startPgBouncer(
  target: PgBouncerTarget,
  opts: { poolSize?: number } = {},
): Promise<PgBouncer> {
  const binary = pgbouncerBinary();
  const poolSize = opts.poolSize ?? 2;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgdl-pgbouncer-'));
  const port = await freePort();
  const logFile = path.join(dir, 'pgbouncer.log');
  const quote = (s: string): string => `"${s.replaceAll('"', '""')}"`;
  writeFileSync(path.join(dir, 'userlist.txt'), `${quote(target.user)} ${quote(target.password)}\n`);
  writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${target.host} port=${target.port}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${path.join(dir, 'userlist.txt')}`,
      `admin_users = ${target.user}`,
      'pool_mode = transaction',
      `default_pool_size = ${poolSize}`,
      'min_pool_size = 0',
      'reserve_pool_size = 0',
      'max_client_conn = 500',
      `logfile = ${logFile}`,
      '',
    ].join('\n'),
  );
  chmodSync(dir, 0o700);
  const ids = runAsIds();
  if (ids) {
    chownSync(dir, ids.uid, ids.gid);
    for (const f of ['userlist.txt', 'pgbouncer.ini']) chownSync(path.join(dir, f), ids.uid, ids.gid);
  }
  const child: ChildProcess = spawn(binary, [path.join(dir, 'pgbouncer.ini')], {
    stdio: ['ignore', 'ignore', 'pipe'],
    ...(ids ?? {}),
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const log = (): string => {
    // PgBouncer writes its log to the file and to stderr: the file, else what stderr got.
    return existsSync(logFile) ? readFileSync(logFile, 'utf8') : stderr;
  };
  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill('SIGTERM');
      await Promise.race([exit, delay(3_000)]);
      if (!exited) child.kill('SIGKILL');
      await exit;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const until = Date.now() + 5_000;
  while (!(await listening(port))) {
    if (exited || Date.now() > until) {
      const text = log();
      await stop();
      throw new Error(`PgBouncer did not start on port ${port}:\n${text}`);
    }
    await delay(25);
  }
  return {
    host: '127.0.0.1',
    port,
    poolSize,
    admin: (command) => adminQuery(port, target.user, command),
    log,
    stop,
  };
}

/** uid/gid of the `postgres` OS user when we are root (PgBouncer refuses root), else undefined. */
function runAsIds(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error(
      'PgBouncer refuses to run as root, and there is no "postgres" OS user to run it as ' +
        '(the embedded server creates one when it starts as root).',
    );
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function adminQuery(
  port: number,
  user: string,
  command: string,
): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ host: '127.0.0.1', port, user, database: 'pgbouncer' });
  client.on('error', () => {});
  await client.connect();
  try {
    const res = await client.query(command);
    return res.rows as Array<Record<string, unknown>>;
  } finally {
    await client.end();
  }
}

/**
 * Mocha helper: a PgBouncer (transaction pooling, `poolSize` server connections) in front of
 * the run's test server for the enclosing `describe`, stopped after it. Fails the suite, not
 * skips it, when pgbouncer is not installed (the error says how to install it).
 */
export function usePgBouncer(opts: { poolSize?: number } = {}): () => PgBouncer {
  let current: PgBouncer | undefined;
  before(async () => {
    current = await startPgBouncer(targetOfUrl(testServer().adminUrl), opts);
  });
  after(async () => {
    await current?.stop();
    current = undefined;
  });
  return () => {
    if (!current) throw new Error('usePgBouncer(): available only inside hooks and tests');
    return current;
  };
}
