import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import pg from 'pg';
import type { PostgresConfig } from '../src/config/app-config.js';
import { DEFAULTS } from '../src/config/defaults.js';
import { EmbeddedServer, migratorConfig } from '../src/db/index.js';
import type { NewUser } from '../src/users/user-input.js';

/** Pool size of every stack in the bench (raw pg, knex, PostgresDatabase). */
export const BENCH_POOL = 8;

/**
 * The server to measure against: `BENCH_DATABASE_URL` if set (left running), else a
 * throwaway embedded PostgreSQL in a temporary directory, removed by `stop()`.
 */
export async function benchServer(): Promise<{ url: string; stop: () => Promise<void> }> {
  if (process.env.BENCH_DATABASE_URL) return { url: process.env.BENCH_DATABASE_URL, stop: async () => {} };
  // Other test runs on a shared machine start their own servers on random ports too: a port
  // taken between our pick and the server's bind fails the start, so try a few.
  for (let attempt = 1; ; attempt++) {
    const root = mkdtempSync(path.join(os.tmpdir(), 'pgdl-bench-'));
    // PostgreSQL runs as the `postgres` OS user when we are root: it must reach the data dir.
    chmodSync(root, 0o755);
    const port = 54000 + Math.floor(Math.random() * 1000);
    const server = new EmbeddedServer({
      dataDir: path.join(root, 'data'),
      port,
      username: 'postgres',
      password: 'bench',
    });
    try {
      await server.start();
    } catch (err) {
      await server.stop().catch(() => {});
      rmSync(root, { recursive: true, force: true });
      if (attempt >= 3) throw err;
      continue;
    }
    return {
      url: `postgres://postgres:bench@127.0.0.1:${port}/postgres`,
      stop: async () => {
        await server.stop();
        rmSync(root, { recursive: true, force: true });
      },
    };
  }
}

/** A `PostgresConfig` for `url` with a pool of `BENCH_POOL` and production-like timeouts. */
export function benchConfig(url: string, overrides: Partial<PostgresConfig> = {}): PostgresConfig {
  const u = new URL(url);
  return {
    // Keys the bench does not set (added later: pooler mode, replicas...) keep their defaults.
    ...DEFAULTS.database.postgres,
    host: u.hostname,
    port: Number(u.port || 5432),
    name: u.pathname.slice(1),
    username: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    sslMode: 'disable',
    sslRootCert: '',
    maxOpenConns: BENCH_POOL,
    maxIdleConns: BENCH_POOL,
    connMaxLifetime: 0,
    connMaxIdleTime: 60_000,
    timeout: 5_000,
    statementTimeout: 30_000,
    lockTimeout: 10_000,
    idleInTransactionSessionTimeout: 60_000,
    maxRetries: 3,
    retryDelay: 100,
    maxRetryDelay: 1_000,
    healthCheckInterval: 10_000,
    healthCheckTimeout: 2_000,
    drainTimeout: 5_000,
    applicationName: 'pgdl-bench',
    preparedStatements: true,
    leakDetectionThreshold: 0,
    hosts: [],
    targetSessionAttrs: 'any',
    replicas: [],
    replicaWaitTimeout: 1_000,
    ...overrides,
  };
}

/**
 * The database every scenario runs in; created fresh for the run and dropped afterwards.
 * `BENCH_DATABASE_NAME` picks another (the quick-mode test does, so that two runs on one
 * server never drop each other's).
 */
export const BENCH_DATABASE = process.env.BENCH_DATABASE_NAME ?? 'pgdl_bench';
if (!/^[a-z_][a-z0-9_]{0,62}$/.test(BENCH_DATABASE))
  throw new Error('BENCH_DATABASE_NAME must be a lower-case SQL identifier (letters, digits, _).');

/**
 * Creates `BENCH_DATABASE` afresh on the server of `serverUrl` (so a `BENCH_DATABASE_URL`
 * pointing at a real database never has its tables touched; needs CREATEDB) and returns its
 * URL and its removal.
 */
export async function benchDatabase(serverUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${BENCH_DATABASE} with (force)`);
    await admin.query(`create database ${BENCH_DATABASE}`);
  } finally {
    await admin.end();
  }
  const u = new URL(serverUrl);
  u.pathname = `/${BENCH_DATABASE}`;
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      try {
        await c.query(`drop database if exists ${BENCH_DATABASE} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** Runs the repository's migrations (`migrations/`, through its own migrator settings) on `url`. */
export async function migrate(url: string): Promise<void> {
  const knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
  try {
    await knex.migrate.latest(migratorConfig());
  } finally {
    await knex.destroy();
  }
}

/** Users of the bench: unique emails in mixed case (findByEmail matches lower(email)). */
export function* benchUsers(count: number, tag = 'seed'): Generator<NewUser> {
  for (let i = 1; i <= count; i++)
    yield { email: `${tag}-${i}@Example.com`, name: `Bench User ${i}`, status: 'active' };
}
