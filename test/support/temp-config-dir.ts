import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A throwaway directory for YAML, .env and secret files, removed after the enclosing describe. */
export interface TempConfigDir {
  dir: string;
  /** Writes `name` (relative to dir) and returns its absolute path. */
  write(name: string, content: string): string;
  /** An absolute path inside dir that does not exist. */
  missing(name: string): string;
}

export function useTempConfigDir(): () => TempConfigDir {
  let current: TempConfigDir | undefined;
  beforeEach(() => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pgdl-config-'));
    current = {
      dir,
      write: (name, content) => {
        const file = path.join(dir, name);
        writeFileSync(file, content);
        return file;
      },
      missing: (name) => path.join(dir, name),
    };
  });
  afterEach(() => {
    if (current) rmSync(current.dir, { recursive: true, force: true });
    current = undefined;
  });
  return () => {
    if (!current) throw new Error('useTempConfigDir(): only inside hooks and tests');
    return current;
  };
}
