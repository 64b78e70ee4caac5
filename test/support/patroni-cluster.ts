import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { withPgClient } from '../../src/db/connection/with-pg-client.js';
import { freePort } from './free-port.js';

/*
 * A Patroni cluster on loopback, from Debian's packages (`.ci/run` installs them: patroni,
 * etcd-server, haproxy, postgresql-15): one etcd, two Patroni-managed PostgreSQL 15 nodes and
 * HAProxy routing to the leader on Patroni's `GET /primary` check. Started once per run
 * (`patroniCluster()`), shared by the Patroni scenarios, stopped at the end of the run.
 *
 * Settings that matter (docs/failure-modes.md, "Patroni"): ttl 10 / loop_wait 2 /
 * retry_timeout 4 (a leader that cannot reach etcd demotes itself within ttl);
 * `primary_start_timeout: 0` (else Patroni 3.0.2 restarts a crashed primary in place instead
 * of failing over); etcd 3.4 through Patroni's `etcd3` section; `checkpoint: fast` for
 * pg_basebackup (else a replica waits for a spread checkpoint, ~90 s); `use_pg_rewind` so a
 * former leader rejoins as a replica. PostgreSQL refuses to run as root: Patroni runs as the
 * `postgres` OS user. Patroni needs Debian's `/usr/bin/python3`, not a `python3` on PATH.
 */

const PG_BIN = '/usr/lib/postgresql/15/bin';
const SUPERUSER_PASSWORD = 'patroni-superuser-secret';
const READY_MS = 90_000;

/** One Patroni-managed PostgreSQL node. */
interface PatroniNode {
  readonly name: string;
  /** PostgreSQL's port on 127.0.0.1. */
  readonly port: number;
  /** Patroni's REST API port. */
  readonly restPort: number;
  readonly hostPort: string;
  readonly dataDir: string;
  /** The postmaster's pid (from postmaster.pid), or undefined when PostgreSQL is down. */
  postmasterPid(): number | undefined;
}

/** The cluster: etcd, the nodes, HAProxy, and what the scenarios do to them. */
export interface PatroniCluster {
  readonly nodes: readonly PatroniNode[];
  /** HAProxy's port: always the leader (Patroni's `/primary` check). */
  readonly haproxyPort: number;
  /** Superuser URL of `database` on `host:port` (a node, or HAProxy). */
  url(hostPort: string, database?: string): string;
  /** The node that is the leader now, by Patroni's REST API (waits for one, up to 60 s). */
  leader(): Promise<PatroniNode>;
  /** The other node. */
  other(node: PatroniNode): PatroniNode;
  /** `GET /cluster` of any node that answers. */
  clusterState(): Promise<{
    members: Array<{ name: string; role: string; state: string; timeline?: number; lag?: unknown }>;
  }>;
  /** Patroni's REST API call on `node` (JSON body), resolves with the status and text. */
  rest(
    node: PatroniNode,
    method: string,
    route: string,
    body?: unknown,
  ): Promise<{ status: number; text: string }>;
  /** PATCH /config (dynamic configuration, e.g. `synchronous_mode`). */
  patchConfig(patch: Record<string, unknown>): Promise<void>;
  /** Resolves once both members run and the replica accepts reads (with `sync`, once it is the synchronous standby; without, once none is). */
  waitHealthy(opts?: { sync?: boolean; timeoutMs?: number }): Promise<void>;
  /** Stops etcd (SIGSTOP: it stops answering, as if unreachable) or resumes it (SIGCONT). */
  pauseEtcd(paused: boolean): void;
  destroy(): Promise<void>;
}

let shared: Promise<PatroniCluster> | undefined;

/** The run's Patroni cluster, started on first use; stopped by `stopPatroniCluster()`. */
export function patroniCluster(): Promise<PatroniCluster> {
  shared ??= startPatroniCluster();
  return shared;
}

/** Stops the run's cluster, if one was started. */
export async function stopPatroniCluster(): Promise<void> {
  const started = shared;
  shared = undefined;
  if (started) await (await started.catch(() => undefined))?.destroy();
}

/** The packages' binaries; throws naming what is missing (the suite fails, not skips, without them). */
function requireBinaries(): void {
  const needed = [
    '/usr/bin/patroni',
    '/usr/bin/etcd',
    '/usr/sbin/haproxy',
    `${PG_BIN}/pg_ctl`,
    `${PG_BIN}/pg_rewind`,
  ];
  const missing = needed.filter((p) => !existsSync(p));
  if (missing.length > 0)
    throw new Error(
      `The Patroni suite needs Debian's patroni, etcd-server, haproxy and postgresql-15 (missing ${missing.join(', ')}); .ci/run installs them (apt-get install -y patroni etcd-server haproxy postgresql-15)`,
    );
}

function postgresUser(): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

async function startPatroniCluster(): Promise<PatroniCluster> {
  requireBinaries();
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgdl-patroni-'));
  const owner = postgresUser();
  chownSync(root, owner.uid, owner.gid);
  const procs: ChildProcess[] = [];
  const spawnLogged = (name: string, cmd: string, args: string[], asPostgres: boolean): ChildProcess => {
    const log = openSync(path.join(root, `${name}.log`), 'a');
    const child = spawn(cmd, args, {
      stdio: ['ignore', log, log],
      ...(asPostgres ? { uid: owner.uid, gid: owner.gid } : {}),
      env: { PATH: `${PG_BIN}:/usr/bin:/bin`, HOME: root, LANG: 'C.UTF-8' },
    });
    procs.push(child);
    return child;
  };
  const [etcdClient, etcdPeer, haproxyPort] = [await freePort(), await freePort(), await freePort()];
  const etcdDir = path.join(root, 'etcd');
  const etcdArgs = [
    '--name=e0',
    `--data-dir=${etcdDir}`,
    `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
    `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
    `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
    `--initial-cluster=e0=http://127.0.0.1:${etcdPeer}`,
  ];
  const etcd = spawnLogged('etcd', '/usr/bin/etcd', etcdArgs, false);
  const nodes: Array<PatroniNode & { config: string }> = [];
  for (const name of ['node1', 'node2']) {
    const [port, restPort] = [await freePort(), await freePort()];
    const dir = path.join(root, name);
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, owner.uid, owner.gid);
    const dataDir = path.join(dir, 'data');
    const config = path.join(dir, 'patroni.yml');
    writeFileSync(
      config,
      patroniYaml({ name, port, restPort, dir, dataDir, etcdClient, scope: path.basename(root) }),
    );
    chownSync(config, owner.uid, owner.gid);
    nodes.push({
      name,
      port,
      restPort,
      hostPort: `127.0.0.1:${port}`,
      dataDir,
      config,
      postmasterPid: () => {
        try {
          const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
          process.kill(pid, 0);
          return pid;
        } catch {
          return undefined;
        }
      },
    });
  }
  const haproxyCfg = path.join(root, 'haproxy.cfg');
  writeFileSync(haproxyCfg, haproxyConfig(haproxyPort, nodes));
  const url = (hostPort: string, database = 'postgres') =>
    `postgres://postgres:${SUPERUSER_PASSWORD}@${hostPort}/${database}`;
  const rest = async (node: PatroniNode, method: string, route: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${node.restPort}${route}`, {
      method,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      signal: AbortSignal.timeout(5_000),
    });
    return { status: res.status, text: await res.text() };
  };
  const clusterState: PatroniCluster['clusterState'] = async () => {
    for (const n of nodes) {
      try {
        const r = await rest(n, 'GET', '/cluster');
        if (r.status === 200)
          return JSON.parse(r.text) as Awaited<ReturnType<PatroniCluster['clusterState']>>;
      } catch {
        // that node's API is down: ask the other
      }
    }
    throw new Error('no Patroni REST API answers');
  };
  const leader = async (): Promise<PatroniNode> => {
    let found: PatroniNode | undefined;
    await waitUntil(
      async () => {
        for (const n of nodes) {
          const r = await rest(n, 'GET', '/primary').catch(() => undefined);
          if (r?.status === 200) return Boolean((found = n));
        }
        return false;
      },
      60_000,
      'a Patroni leader',
    );
    return found!;
  };
  const waitHealthy: PatroniCluster['waitHealthy'] = async ({ sync, timeoutMs = READY_MS } = {}) => {
    await waitUntil(
      async () => {
        const state = await clusterState().catch(() => undefined);
        const members = state?.members ?? [];
        const lead = members.find((m) => m.role === 'leader' && m.state === 'running');
        const replica = members.find(
          (m) => m.role !== 'leader' && (m.state === 'streaming' || m.state === 'running'),
        );
        if (!lead || !replica) return false;
        if (sync !== undefined && (replica.role === 'sync_standby') !== sync) return false;
        const follower = nodes.find((n) => n.name === replica.name)!;
        // The replica streams when it accepts a read.
        return withPgClient(
          url(follower.hostPort),
          async (c) => (await c.query<{ r: boolean }>('select pg_is_in_recovery() as r')).rows[0]?.r === true,
        ).catch(() => false);
      },
      timeoutMs,
      'a healthy Patroni cluster (a leader and a streaming replica)',
    );
  };
  const destroy = async (): Promise<void> => {
    for (const p of procs.reverse()) if (p.exitCode === null && p.signalCode === null) p.kill('SIGCONT');
    await Promise.all(procs.map((p) => stopProcess(p, 'SIGTERM', 15_000)));
    // Whatever Patroni left behind (it stops PostgreSQL on SIGTERM; SIGKILL would not).
    for (const n of nodes) {
      const pid = n.postmasterPid();
      if (pid) process.kill(pid, 'SIGKILL');
    }
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await waitUntil(
      () =>
        fetch(`http://127.0.0.1:${etcdClient}/health`).then(
          (r) => r.ok,
          () => false,
        ),
      20_000,
      'etcd',
    );
    // The first node bootstraps the cluster; the second is made from it by pg_basebackup.
    spawnLogged(nodes[0]!.name, '/usr/bin/python3', ['/usr/bin/patroni', nodes[0]!.config], true);
    await leader();
    spawnLogged(nodes[1]!.name, '/usr/bin/python3', ['/usr/bin/patroni', nodes[1]!.config], true);
    spawnLogged('haproxy', '/usr/sbin/haproxy', ['-f', haproxyCfg, '-db'], false);
    await waitHealthy();
  } catch (err) {
    const logs = ['etcd', 'node1', 'node2', 'haproxy']
      .map((f) => tail(path.join(root, `${f}.log`)))
      .join('\n');
    await destroy();
    throw new Error(`The Patroni cluster did not start: ${(err as Error).message}\n${logs}`, { cause: err });
  }
  return {
    nodes,
    haproxyPort,
    url,
    leader,
    other: (node) => nodes.find((n) => n !== node)!,
    clusterState,
    rest,
    patchConfig: async (patch) => {
      const r = await rest(await leader(), 'PATCH', '/config', patch);
      if (r.status !== 200) throw new Error(`PATCH /config answered ${r.status}: ${r.text}`);
    },
    waitHealthy,
    pauseEtcd: (paused) => void etcd.kill(paused ? 'SIGSTOP' : 'SIGCONT'),
    destroy,
  };
}

function patroniYaml(o: {
  name: string;
  port: number;
  restPort: number;
  dir: string;
  dataDir: string;
  etcdClient: number;
  scope: string;
}): string {
  return `scope: ${o.scope}
namespace: /pgdl-test/
name: ${o.name}
log:
  level: INFO
restapi:
  listen: 127.0.0.1:${o.restPort}
  connect_address: 127.0.0.1:${o.restPort}
etcd3:
  hosts: 127.0.0.1:${o.etcdClient}
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 2
    retry_timeout: 4
    maximum_lag_on_failover: 1048576
    primary_start_timeout: 0
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: 'on'
        wal_log_hints: 'on'
        max_connections: 100
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 256MB
        max_prepared_transactions: 0
  initdb:
    - encoding: UTF8
    - auth-local: trust
    - auth-host: scram-sha-256
postgresql:
  listen: 127.0.0.1:${o.port}
  connect_address: 127.0.0.1:${o.port}
  data_dir: ${o.dataDir}
  bin_dir: ${PG_BIN}
  pgpass: ${o.dir}/pgpass
  authentication:
    superuser:
      username: postgres
      password: ${SUPERUSER_PASSWORD}
    replication:
      username: replicator
      password: patroni-replication-secret
    rewind:
      username: postgres
      password: ${SUPERUSER_PASSWORD}
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 scram-sha-256
    - host replication replicator 127.0.0.1/32 scram-sha-256
  basebackup:
    - checkpoint: fast
  parameters:
    unix_socket_directories: '${o.dir}'
    shared_buffers: 32MB
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
`;
}

function haproxyConfig(port: number, nodes: readonly PatroniNode[]): string {
  const servers = nodes
    .map((n) => `  server ${n.name} 127.0.0.1:${n.port} maxconn 100 check port ${n.restPort}`)
    .join('\n');
  return `global
  maxconn 200
defaults
  mode tcp
  timeout connect 2s
  timeout client 30m
  timeout server 30m
  timeout check 1s
listen primary
  bind 127.0.0.1:${port}
  option httpchk GET /primary
  http-check expect status 200
  default-server inter 100ms fall 1 rise 1
${servers}
`;
}

async function waitUntil(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

async function stopProcess(p: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  p.kill(signal);
  const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

function tail(file: string): string {
  try {
    return `--- ${path.basename(file)}\n${readFileSync(file, 'utf8').split('\n').slice(-25).join('\n')}`;
  } catch {
    return '';
  }
}
