import { readFileSync } from 'node:fs';
import { DEFAULTS } from './defaults.js';
import { ENV_VARS } from './env-vars.js';
import { getPath, setPath, type ConfigSource } from './merge-layers.js';

/** Environment as the loader sees it; an empty string counts as unset. */
export type Env = Readonly<Record<string, string | undefined>>;

/** The value of a variable, or undefined when it is unset or empty. */
export function envValue(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

/**
 * Reads `NAME` or `NAME_FILE` (the file's content without one trailing newline, as
 * Docker and Kubernetes secrets are written). Setting both, or an unreadable file, is an issue
 * naming the variable and the path, never the content.
 */
export function readVariable(
  env: Env,
  name: string,
  issues: string[],
): { value: string; source: string } | undefined {
  const value = envValue(env, name);
  const fileVar = `${name}_FILE`;
  const file = envValue(env, fileVar);
  if (file === undefined) return value === undefined ? undefined : { value, source: name };
  if (value !== undefined) {
    issues.push(`${name}: ${name} and ${fileVar} are both set; set only one`);
    return undefined;
  }
  try {
    return { value: readFileSync(file, 'utf8').replace(/\r?\n$/, ''), source: fileVar };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
    issues.push(`${fileVar}: cannot read ${JSON.stringify(file)} (${code})`);
    return undefined;
  }
}

/**
 * The environment layer: every variable of `ENV_VARS` (or its `_FILE` twin) that is set,
 * converted to the type of its key's default: decimal numbers become numbers (durations also
 * accept "30s"), true/false/1/0/yes/no/on/off become booleans, a list is comma-separated. A
 * value that does not convert stays a string, so validation reports it with the key and the
 * variable name.
 */
export function readEnvLayer(env: Env, issues: string[]): ConfigSource {
  const values: Record<string, unknown> = {};
  const leafSources = new Map<string, string>();
  for (const [name, path] of Object.entries(ENV_VARS)) {
    const found = readVariable(env, name, issues);
    if (!found) continue;
    setPath(values, path, coerce(found.value, getPath(DEFAULTS, path)));
    leafSources.set(path, found.source);
  }
  return { name: 'environment', values, leafSources };
}

const BOOLEANS: Readonly<Record<string, boolean>> = {
  true: true,
  false: false,
  '1': true,
  '0': false,
  yes: true,
  no: false,
  on: true,
  off: false,
};

function coerce(text: string, like: unknown): unknown {
  const trimmed = text.trim();
  if (typeof like === 'number' && /^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(trimmed)) return Number(trimmed);
  if (typeof like === 'boolean') return BOOLEANS[trimmed.toLowerCase()] ?? text;
  // A list (DB_HOSTS, DB_REPLICAS): comma-separated, blanks around items ignored, empty = none.
  if (Array.isArray(like)) return trimmed === '' ? [] : trimmed.split(',').map((item) => item.trim());
  return text;
}
