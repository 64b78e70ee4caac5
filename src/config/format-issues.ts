import type { z } from 'zod';
import { DEFAULTS, SECRET_KEYS } from './defaults.js';
import { getPath, isPlainObject } from './merge-layers.js';
import { suggestKey } from './suggest-key.js';

/** Where each leaf came from (see `mergeLayers`); used to end an issue with `[from DB_PORT]`. */
export type SourceMap = ReadonlyMap<string, string>;

/**
 * Turns zod's issues into one sentence each, `key.path: problem (got value) [from source]`.
 * The offending value is echoed only for known, non-secret scalar keys, so a password (or a
 * URL pasted into the wrong key) never reaches an error message.
 */
export function formatIssues(issues: readonly z.core.$ZodIssue[], sources: SourceMap): string[] {
  return issues.flatMap((issue) => {
    const path = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      const known = Object.keys((path ? getPath(DEFAULTS, path) : DEFAULTS) ?? {});
      return issue.keys.map((key) => {
        const keyPath = path ? `${path}.${key}` : key;
        return `${keyPath}: ${unknownKeyMessage(key, path, known)}${fromSource(keyPath, sources)}`;
      });
    }
    return [`${path || '(root)'}: ${problem(issue)}${got(path, issue.input)}${fromSource(path, sources)}`];
  });
}

/** Appends where a key's value came from, unless it is a built-in default. */
export function fromSource(path: string, sources: SourceMap): string {
  let source = sources.get(path);
  if (source === undefined) {
    for (const [leaf, name] of sources) if (leaf.startsWith(`${path}.`) && name) source = name;
  }
  return source ? ` [from ${source}]` : '';
}

/** ` (got 70000)` for known non-secret scalar keys; a type name for anything else; nothing for secrets. */
function got(path: string, input: unknown): string {
  if (input === undefined || SECRET_KEYS.includes(path)) return '';
  if (Array.isArray(input)) return ' (got a list)';
  if (isPlainObject(input)) return ' (got a mapping)';
  const known = getPath(DEFAULTS, path);
  if (known === undefined || isPlainObject(known))
    return ` (got ${input === null ? 'null' : `a ${typeof input}`})`;
  const text = JSON.stringify(input) ?? typeof input;
  return ` (got ${text.length > 60 ? `${text.slice(0, 57)}...` : text})`;
}

function unknownKeyMessage(key: string, parent: string, known: readonly string[]): string {
  if (!parent && key === 'profile') return 'unknown key (the profile comes from APP_ENV or NODE_ENV)';
  const suggestion =
    suggestKey(key, known) ??
    (parent ? undefined : known.find((own) => key.toLowerCase().startsWith(own.toLowerCase())));
  if (!parent && !suggestion) {
    return `unknown key (known: ${known.join(', ')}; an application's own section can be declared with loadConfig({ sections }))`;
  }
  return suggestion
    ? `unknown key (did you mean ${suggestion}?)`
    : `unknown key (known: ${known.join(', ')})`;
}

function problem(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_value':
      return `must be one of ${issue.values.map(String).join(', ')}`;
    case 'invalid_type':
      // Our own messages are set in the schema; zod's default ones start with "Invalid input".
      if (!issue.message.startsWith('Invalid input')) return issue.message;
      return issue.expected === 'object' ? 'expected a mapping of keys' : `expected ${issue.expected}`;
    default:
      return issue.message;
  }
}
