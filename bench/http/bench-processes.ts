import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { EmbeddedServer } from '../../src/db/index.js';
import { freePort } from '../../test/support/free-port.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PASSWORD = 'bench-http';

/**
 * A throwaway embedded PostgreSQL (data directory in a temp dir, removed by `stop()`) with an
 * empty database `name` created on it; returns that database's URL.
 */
export async function startDatabase(name: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgdl-bench-http-'));
  // PostgreSQL runs as the `postgres` OS user when we are root: it must reach the data dir.
  chmodSync(root, 0o755);
  const port = await freePort();
  const server = new EmbeddedServer({
    dataDir: path.join(root, 'data'),
    port,
    username: 'postgres',
    password: PASSWORD,
  });
  await server.start();
  const admin = new pg.Client({
    connectionString: `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`,
  });
  await admin.connect();
  await admin.query(`create database ${name}`).finally(() => admin.end());
  return {
    url: `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/${name}`,
    stop: async () => {
      await server.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A server under test running in a child process. */
export interface BenchProcess {
  url: string;
  pid: number;
  /** The last 200 kB it printed (the service: its JSON log lines at warn and above). */
  output(): string;
  /** SIGTERM, then SIGKILL after 10 s; resolves when it has exited. */
  stop(): Promise<void>;
}

/**
 * The service as `npm start` runs it (`tsx src/main.ts`; here `node --import tsx`, so
 * `--cpu-prof` reaches the process that serves) in the development profile, with
 * `LOG_LEVEL=warn` JSON logs, migrations at start, on `databaseUrl`. Resolves once `/readyz`
 * answers 200. With `cpuProfDir`, it writes a V8 CPU profile there when it exits; `extraEnv`
 * adds or overrides settings.
 */
export async function startService(
  databaseUrl: string,
  cpuProfDir?: string,
  extraEnv: Record<string, string> = {},
): Promise<BenchProcess> {
  const port = await freePort();
  const env = {
    ...cleanEnv(),
    APP_ENV: 'development',
    LOG_LEVEL: 'warn',
    LOG_PRETTY: 'false',
    DATABASE_URL: databaseUrl,
    DB_SSLMODE: 'disable',
    DB_MIGRATE_ON_START: 'true',
    SERVER_HOST: '127.0.0.1',
    SERVER_PORT: String(port),
    ...extraEnv,
  };
  const prof = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [];
  const child = spawn(process.execPath, [...prof, '--import', 'tsx', 'src/main.ts'], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = `http://127.0.0.1:${port}`;
  const output = collectOutput(child);
  await waitUntil(child, async () => (await fetch(`${url}/readyz`)).status === 200, 'the service', output);
  return asBenchProcess(child, url, output);
}

/** The bare Fastify + pg baseline (`baseline-server.ts`) on `databaseUrl`; `cpuProfDir` as for the service. */
export async function startBaseline(databaseUrl: string, cpuProfDir?: string): Promise<BenchProcess> {
  const port = await freePort();
  const prof = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [];
  const child = spawn(process.execPath, [...prof, '--import', 'tsx', 'bench/http/baseline-server.ts'], {
    cwd: REPO_ROOT,
    env: { ...cleanEnv(), DATABASE_URL: databaseUrl, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = `http://127.0.0.1:${port}`;
  const output = collectOutput(child);
  await waitUntil(
    child,
    async () => (await fetch(`${url}/users?limit=1`)).status === 200,
    'the baseline',
    output,
  );
  return asBenchProcess(child, url, output);
}

/** This process's environment without anything that would configure the service. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env))
    if (/^(DB_|DATABASE_URL|SERVER_|LOG_|APP_ENV|NODE_ENV|PG|CONFIG_DIR)/.test(key)) delete env[key];
  return env;
}

/** Polls `ready` every 100 ms for up to 60 s; rejects with the child's output if it exits first. */
/** The last 200 kB a child printed (stdout and stderr). */
function collectOutput(child: ChildProcess): () => string {
  let output = '';
  const add = (c: Buffer): void => void (output = (output + c.toString()).slice(-200_000));
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  return () => output;
}

async function waitUntil(
  child: ChildProcess,
  ready: () => Promise<boolean>,
  what: string,
  output: () => string,
): Promise<void> {
  let exited = false;
  child.once('exit', () => (exited = true));
  const started = Date.now();
  for (;;) {
    if (exited) throw new Error(`${what} exited before it was ready:\n${output()}`);
    if (await ready().catch(() => false)) return;
    if (Date.now() - started > 60_000) {
      child.kill('SIGKILL');
      throw new Error(`${what} was not ready within 60 s:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function asBenchProcess(child: ChildProcess, url: string, output: () => string): BenchProcess {
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    url,
    pid: child.pid!,
    output,
    stop: async () => {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
