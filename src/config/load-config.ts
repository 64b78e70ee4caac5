import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import type { AppConfig } from './app-config.js';
import { ConfigError } from './config-error.js';
import { configSchema } from './config-schema.js';
import { crossFieldIssues } from './cross-field-issues.js';
import { DEFAULTS, PROFILE_DEFAULTS } from './defaults.js';
import { formatIssues } from './format-issues.js';
import { parseHostPort } from './host-port.js';
import { freezeConfig } from './freeze-config.js';
import { takeAppSections, type SectionSchemas, type SectionsOutput } from './app-sections.js';
import { mergeLayers, type ConfigSource } from './merge-layers.js';
import { parseDatabaseUrl } from './parse-database-url.js';
import { envValue, readEnvLayer, readVariable, type Env } from './read-env-layer.js';
import { readYamlLayer } from './read-yaml-layer.js';

/** Where `loadConfig` reads from; every field is optional and defaults to the process's own. */
export interface LoadConfigOptions<S extends SectionSchemas = SectionSchemas> {
  /** Variables to read instead of `process.env` (which is never modified). */
  env?: Record<string, string | undefined>;
  /** Directory of `default.yaml` and `<profile>.yaml`; default `$CONFIG_DIR`, else `./config`. */
  configDir?: string;
  /** Overrides APP_ENV / NODE_ENV. */
  profile?: string;
  /** The `.env` file; default `./.env` (optional when not given). `false` reads none. */
  envFile?: string | false;
  /**
   * The application's own top-level sections, each with a Standard Schema (zod, valibot, ...)
   * validated with the layer's: their problems join the same `ConfigError`, and the result
   * carries each section's output, typed. A top-level section that is neither the layer's nor
   * declared is left to the application as it was read (not validated, not an error), unless
   * its name looks like a misspelling of one of the layer's (`databse`, `logging`).
   */
  sections?: S;
}

const PROFILE_NAME = /^[a-z0-9][a-z0-9_-]*$/i;

/**
 * Loads, validates and freezes the application's configuration. Layers, lowest first:
 * built-in `DEFAULTS` (adjusted by `PROFILE_DEFAULTS`) < `config/default.yaml` <
 * `config/<profile>.yaml` < environment variables (`ENV_VARS`, each also as `NAME_FILE`;
 * a `.env` file fills only variables that are not set) < `DATABASE_URL`. The profile is
 * `opts.profile`, else `APP_ENV`, else `NODE_ENV`, else `development`.
 *
 * The result is deeply frozen; every duration is a number of milliseconds. The two passwords
 * (`database.postgres.password`, `database.migrations.password`) are readable but
 * non-enumerable, so `JSON.stringify`, `util.inspect` and loggers do not see them; note that
 * object spread and `structuredClone` drop them too: pass the object itself, or read the
 * password explicitly. Print a config with `redactConfig()`.
 *
 * Synchronous: call it once at start-up, before anything else.
 *
 * @throws ConfigError listing every problem of every layer at once (unknown keys with a
 *   suggestion, wrong types, out-of-range values, unreadable files, a bad DATABASE_URL).
 *
 * @example
 * ```ts
 * const config = loadConfig(); // APP_ENV=production DB_HOST=db DB_PASSWORD_FILE=/run/secrets/db
 * const logger = createLogger(config.log);
 * const db = new PostgresDatabase(config.database.postgres, logger);
 * ```
 */
export function loadConfig<S extends SectionSchemas = Record<never, never>>(
  opts: LoadConfigOptions<S> = {},
): AppConfig & SectionsOutput<S> {
  const issues: string[] = [];
  const env = withEnvFile(opts.env ?? process.env, opts.envFile, issues);
  const profile = opts.profile || envValue(env, 'APP_ENV') || envValue(env, 'NODE_ENV') || 'development';
  const validProfile = PROFILE_NAME.test(profile) && profile !== 'default';
  if (!validProfile) {
    issues.push(
      `profile: ${JSON.stringify(profile)} is not a valid profile name (letters, digits, - and _; not "default")`,
    );
  }
  const configDir = path.resolve(opts.configDir ?? envValue(env, 'CONFIG_DIR') ?? 'config');

  const layers: ConfigSource[] = [{ name: '', values: DEFAULTS }];
  if (validProfile && Object.hasOwn(PROFILE_DEFAULTS, profile)) {
    layers.push({ name: '', values: PROFILE_DEFAULTS[profile] ?? {} });
  }
  for (const file of validProfile ? ['default.yaml', `${profile}.yaml`] : ['default.yaml']) {
    const layer = readYamlLayer(path.join(configDir, file), issues);
    if (layer) layers.push(layer);
  }
  layers.push(readEnvLayer(env, issues));
  const url = readVariable(env, 'DATABASE_URL', issues);
  if (url) layers.push(parseDatabaseUrl(url.value, url.source, issues));

  const { merged, sources } = mergeLayers(layers);
  const appSections = takeAppSections(merged, opts.sections ?? {}, sources, issues);
  const result = configSchema.safeParse(merged, { reportInput: true });
  if (!result.success) issues.push(...formatIssues(result.error.issues, sources));
  issues.push(...crossFieldIssues(merged, profile, sources));
  if (issues.length > 0 || !result.success) throw new ConfigError(issues);
  const config = freezeConfig({ profile, ...withFirstHost(result.data) }, appSections);
  return config as AppConfig & SectionsOutput<S>;
}

/**
 * `hosts` without `host` (a YAML or DB_HOSTS list): `host`/`port` become the first of the list,
 * so that nothing reads an empty `host` as "start an embedded PostgreSQL".
 */
function withFirstHost<T extends { database: { postgres: { host: string; port: number; hosts: string[] } } }>(
  data: T,
): T {
  const pg = data.database.postgres;
  const first = pg.hosts[0];
  if (pg.host !== '' || first === undefined) return data;
  ({ host: pg.host, port: pg.port } = parseHostPort(first));
  return data;
}

/** `env` plus the `.env` file's variables that `env` does not set (dotenv's rule; env wins). */
function withEnvFile(env: Env, envFile: string | false | undefined, issues: string[]): Env {
  if (envFile === false) return env;
  const file = path.resolve(envFile ?? '.env');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // The default .env is optional; one asked for by name must exist.
    if (envFile !== undefined || code !== 'ENOENT') {
      issues.push(`envFile: cannot read ${JSON.stringify(file)} (${code ?? 'unknown error'})`);
    }
    return env;
  }
  const merged: Record<string, string | undefined> = { ...parseDotenv(text) };
  for (const [name, value] of Object.entries(env)) if (value !== undefined) merged[name] = value;
  return merged;
}
