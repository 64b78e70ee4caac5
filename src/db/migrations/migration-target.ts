import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { AppConfig, PostgresConfig } from '../../config/app-config.js';
import { hidePassword } from '../../config/hide-password.js';
import type { Logger } from '../../observability/logger.js';
import {
  embeddedPassword,
  forgetEmbeddedPassword,
  LEGACY_EMBEDDED_PASSWORD,
  type EmbeddedPassword,
} from '../embedded/embedded-password.js';
import { EmbeddedServer } from '../embedded/embedded-server.js';
import type { EmbeddedPostgresLoader } from '../embedded/load-embedded-postgres.js';
import { withPgClient } from '../connection/with-pg-client.js';

/** The server a CLI run migrates, and how to leave it as it was found. */
export interface MigrationTarget {
  /**
   * The config to connect with: `cfg` itself for a given server; for the embedded one, host
   * 127.0.0.1 and, when no password is set, the data directory's own random password (still
   * non-enumerable; see `embeddedPassword`).
   */
  config: AppConfig;
  /** The embedded server when no host is configured; undefined for a given server. */
  embedded: EmbeddedServer | undefined;
  /** Stops the embedded server if this run started it (a server found running stays up). */
  stop(): Promise<void>;
}

/**
 * Makes the configured database reachable for a one-shot command (the knex CLI, a seed run).
 * With a host configured it does nothing. With none (the embedded default) it starts the
 * embedded server on `database.embedded.dataDir` and `database.postgres.port` unless one
 * already runs there, and creates `database.postgres.name` if missing (the configured user
 * is the embedded server's superuser).
 *
 * The embedded superuser's password is `database.postgres.password` when set; otherwise a
 * random one per data directory, kept in a 0600 file beside it (`.data/postgres.password`
 * for `.data/postgres`) and reused by every later run, so the service, the knex CLI and the
 * examples share one server. A data directory initialised before it had that file (with the
 * old fixed password `postgres`) is given the new random password at its first start.
 *
 * With `stopOnExit`, a server this call started is stopped when the process exits, and
 * the exit waits (up to `shutdownWaitMs`) until it is gone: the knex CLI ends with
 * `process.exit()`, so an `await` after the command would never run.
 *
 * `loadEmbeddedPostgres` replaces the dynamic import of the `embedded-postgres` package
 * (tests pass one that fails).
 *
 * @throws ConfigError when no host is configured and `embedded-postgres` (a development
 *   dependency) is not installed: a production install needs `DB_HOST` or `DATABASE_URL`.
 */
export async function prepareMigrationTarget(
  cfg: AppConfig,
  opts: {
    stopOnExit?: boolean;
    shutdownWaitMs?: number;
    logger?: Logger;
    loadEmbeddedPostgres?: EmbeddedPostgresLoader;
  } = {},
): Promise<MigrationTarget> {
  const given = cfg.database.postgres;
  if (given.host !== '') return { config: cfg, embedded: undefined, stop: async () => {} };
  const dataDir = cfg.database.embedded.dataDir;
  const initialised = existsSync(path.join(path.resolve(dataDir), 'PG_VERSION'));
  const secret = given.password === '' ? embeddedPassword(dataDir) : undefined;
  // The spread copy has no password (loadConfig's is hidden): hide it again on the copy.
  const pgCfg = hidePassword({ ...given, host: '127.0.0.1' }, secret?.password ?? given.password);
  const config: AppConfig = { ...cfg, database: { ...cfg.database, postgres: pgCfg } };
  const server = new EmbeddedServer({
    dataDir: cfg.database.embedded.dataDir,
    port: pgCfg.port,
    username: pgCfg.username,
    password: pgCfg.password,
    logger: opts.logger,
    loadModule: opts.loadEmbeddedPostgres,
  });
  await server.start();
  if (opts.stopOnExit && server.startedByUs) {
    const pid = postmasterPid(server.dataDir);
    process.once('exit', () => {
      // Synchronous up to the SIGINT (fast shutdown); then wait for the postmaster to go.
      void server.stop();
      if (pid !== undefined) waitForExit(server.dataDir, pid, opts.shutdownWaitMs ?? 15_000);
    });
  }
  try {
    if (secret?.created && initialised) await adoptPassword(pgCfg, secret, server.dataDir, opts.logger);
    await ensureDatabase(pgCfg, opts.logger);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return { config, embedded: server, stop: () => server.stop() };
}

/**
 * Gives the superuser of a data directory made before it had a password file (so with the
 * old fixed password) the newly generated one. On failure the new file is removed again, so
 * the next run tries afresh.
 */
async function adoptPassword(
  pgCfg: PostgresConfig,
  secret: EmbeddedPassword,
  dataDir: string,
  logger: Logger | undefined,
): Promise<void> {
  const legacy = {
    host: pgCfg.host,
    port: pgCfg.port,
    user: pgCfg.username,
    password: LEGACY_EMBEDDED_PASSWORD,
    database: 'postgres',
    connectionTimeoutMillis: pgCfg.timeout,
  };
  try {
    await withPgClient(legacy, async (client) => {
      // ALTER ROLE takes no bind parameters; the password is base64url (no quotes to escape).
      await client.query(`alter role current_user password ${client.escapeLiteral(secret.password)}`);
    });
  } catch (err) {
    forgetEmbeddedPassword(secret);
    throw new Error(
      `The embedded data directory ${dataDir} has no password file and does not take the old ` +
        'development password: set DB_PASSWORD to the password it was created with, or delete ' +
        'the directory to start afresh.',
      { cause: err },
    );
  }
  logger?.warn(
    { dataDir, passwordFile: secret.file },
    'the embedded server had the fixed development password; it now has a random one, kept in passwordFile',
  );
}

/** Creates the configured database on the embedded server (whose superuser is the configured user) if missing. */
async function ensureDatabase(pgCfg: PostgresConfig, logger: Logger | undefined): Promise<void> {
  const server = {
    host: pgCfg.host,
    port: pgCfg.port,
    user: pgCfg.username,
    password: pgCfg.password,
    database: 'postgres',
    connectionTimeoutMillis: pgCfg.timeout,
  };
  await withPgClient(server, async (client) => {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [pgCfg.name]);
    if (rowCount) return;
    await client.query(`create database ${client.escapeIdentifier(pgCfg.name)}`);
    logger?.info({ database: pgCfg.name }, 'created the embedded database');
  });
}

function postmasterPid(dataDir: string): number | undefined {
  const file = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Blocks (an 'exit' handler cannot await) until the postmaster has shut down or `timeoutMs`
 * passed. PostgreSQL removes postmaster.pid as the last step of a clean shutdown; the
 * process itself lingers as a zombie (our child, unreaped while we block), so a liveness
 * probe alone would wait out the whole timeout.
 */
function waitForExit(dataDir: string, pid: number, timeoutMs: number): void {
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const pidFile = path.join(dataDir, 'postmaster.pid');
  const until = Date.now() + timeoutMs;
  while (Date.now() < until && existsSync(pidFile) && isRunning(pid)) Atomics.wait(sleeper, 0, 0, 25);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // Linux: state Z (zombie) or X (dead) means it has exited; elsewhere trust kill().
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return true;
  }
}
