import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { DEFAULTS } from './defaults.js';
import { getPath, isPlainObject, type ConfigSource } from './merge-layers.js';

/**
 * One YAML file as a layer. A missing file is an empty layer (every profile file is optional).
 * A syntax error or a top level that is not a mapping is an issue naming the file, line and
 * column; the offending text is never quoted, as it may hold a password. An empty file (or
 * one of comments only) is an empty layer, and so is an empty section (`server:` with nothing under it).
 */
export function readYamlLayer(file: string, issues: string[]): ConfigSource | undefined {
  const name = displayPath(file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    issues.push(`${name}: cannot read the file (${code ?? 'unknown error'})`);
    return undefined;
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  if (doc.errors.length > 0) {
    for (const error of doc.errors) {
      const at = lineCounter.linePos(error.pos[0]);
      issues.push(
        `${name}: invalid YAML${at ? ` at line ${at.line}, column ${at.col}` : ''} (${error.code})`,
      );
    }
    return undefined;
  }
  const values: unknown = doc.toJS({ maxAliasCount: 100 });
  if (values === null || values === undefined) return { name, values: {} };
  if (!isPlainObject(values)) {
    issues.push(
      `${name}: the top level must be a mapping of keys (got ${Array.isArray(values) ? 'a list' : `a ${typeof values}`})`,
    );
    return undefined;
  }
  return { name, values: dropEmptySections(values) };
}

/** `section:` with nothing under it parses as null; treat it as an empty mapping, not a value. */
function dropEmptySections(values: Record<string, unknown>, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    const keyPath = prefix ? `${prefix}.${key}` : key;
    if (value === null && isPlainObject(getPath(DEFAULTS, keyPath))) continue;
    Object.defineProperty(out, key, {
      value: isPlainObject(value) ? dropEmptySections(value, keyPath) : value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** Relative to the working directory when inside it (shorter issues), else absolute. */
function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}
