import { readdir } from 'node:fs/promises';
import path from 'node:path';
import {
  MIGRATION_LOAD_EXTENSIONS,
  MIGRATIONS_DIRECTORY,
  MIGRATIONS_TABLE,
  executorFor,
  type Database,
  type Executor,
  type PoolStats,
} from '../db/index.js';

/** The server as it describes itself. */
export interface ServerInfo {
  /** `server_version`, e.g. "18.4". */
  version: string;
  /** `server_version_num`, e.g. 180004. */
  versionNum: number;
  /** True on a standby (read replica, or a primary still recovering). */
  inRecovery: boolean;
  database: string;
  user: string;
}

/** The schema's migration state, as knex's migrator would see it. */
export interface MigrationStatus {
  /** Applied migrations, oldest first. */
  applied: string[];
  /** Migration files not applied yet, in the order knex would run them. */
  pending: string[];
  /** The last applied migration, or null on an empty schema. */
  latest: string | null;
  /** Applied migrations whose file is missing (knex refuses to migrate then). */
  missingFiles: string[];
  upToDate: boolean;
}

/** Where `HealthRepository.migrationStatus()` looks; both default to what the migrator uses. */
export interface HealthRepositoryOptions {
  /** Default: the project's `migrations/` directory. */
  migrationsDirectory?: string;
  /** Default: `knex_migrations`. */
  migrationsTable?: string;
}

/**
 * Read-only probes of the database for health reports: ping, server info, migration status
 * and pool statistics. Nothing here writes: the migration status reads knex's table if it
 * exists (unlike `knex.migrate.list()`, which creates it), so it works under an application
 * role without DDL rights. Every query method takes an optional executor; without one it
 * joins the ambient transaction, else uses the pool.
 */
export class HealthRepository {
  readonly #db: Pick<Database, 'driver' | 'getConnectionStats'>;
  readonly #directory: string;
  readonly #table: string;

  /** Reads through `db.driver()`; migration files and table default to the migrator's own. */
  constructor(db: Pick<Database, 'driver' | 'getConnectionStats'>, opts: HealthRepositoryOptions = {}) {
    this.#db = db;
    this.#directory = opts.migrationsDirectory ?? MIGRATIONS_DIRECTORY;
    this.#table = opts.migrationsTable ?? MIGRATIONS_TABLE;
  }

  /** Round trip of `select 1`, ms (fractional). Rejects with the driver's error when the database is unreachable. */
  async ping(executor?: Executor): Promise<number> {
    const started = performance.now();
    await this.#ex(executor).raw('select 1');
    return performance.now() - started;
  }

  /** Version, recovery state, database and role of the server, in one query. Rejects with the driver's error when unreachable. */
  async serverInfo(executor?: Executor): Promise<ServerInfo> {
    const result = await this.#ex(executor).raw<{ rows: Array<Record<string, unknown>> }>(
      `select current_setting('server_version') as version,
              current_setting('server_version_num')::int as version_num,
              pg_is_in_recovery() as in_recovery,
              current_database() as database,
              current_user as "user"`,
    );
    const row = result.rows[0] ?? {};
    return {
      version: String(row.version),
      versionNum: Number(row.version_num),
      inRecovery: row.in_recovery === true,
      database: String(row.database),
      user: String(row.user),
    };
  }

  /** Applied vs. on-disk migrations; an empty database (no knex table yet) has everything pending. */
  async migrationStatus(executor?: Executor): Promise<MigrationStatus> {
    const ex = this.#ex(executor);
    const exists = await ex.raw<{ rows: Array<{ t: string | null }> }>('select to_regclass(?)::text as t', [
      this.#table,
    ]);
    const applied = exists.rows[0]?.t
      ? ((await ex(this.#table).orderBy('id').pluck('name')) as string[])
      : [];
    const files = await this.#migrationFiles();
    const done = new Set(applied);
    const pending = files.filter((f) => !done.has(f));
    const onDisk = new Set(files);
    return {
      applied,
      pending,
      latest: applied.at(-1) ?? null,
      missingFiles: applied.filter((name) => !onDisk.has(name)),
      upToDate: pending.length === 0,
    };
  }

  /** The pool statistics of the database this repository reads. */
  poolStats(): PoolStats {
    return this.#db.getConnectionStats();
  }

  async #migrationFiles(): Promise<string[]> {
    const entries = await readdir(this.#directory);
    // As knex's FsMigrations: loadable extensions only, no declaration files, sorted by name.
    return entries
      .filter((f) => MIGRATION_LOAD_EXTENSIONS.includes(path.extname(f)) && !f.endsWith('.d.ts'))
      .sort();
  }

  #ex(explicit?: Executor): Executor {
    return executorFor(this.#db.driver(), explicit);
  }
}
