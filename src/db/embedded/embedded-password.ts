import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The superuser password embedded data directories made before they got their own had. */
export const LEGACY_EMBEDDED_PASSWORD = 'postgres';

/** An embedded data directory's superuser password, and whether this call made it. */
export interface EmbeddedPassword {
  password: string;
  /** True when this call generated the password and wrote its file. */
  created: boolean;
  /** The file that keeps it (see {@link embeddedPasswordFile}). */
  file: string;
}

/**
 * Where the superuser password of the embedded data directory `dataDir` is kept: next to it,
 * in its parent (`.data/postgres` -> `.data/postgres.password`), because the directory itself
 * must be empty for initdb and belongs to the server's OS user when the process is root.
 */
export function embeddedPasswordFile(dataDir: string): string {
  return `${path.resolve(dataDir)}.password`;
}

/**
 * The superuser password of the embedded data directory `dataDir`: read from its file
 * ({@link embeddedPasswordFile}), or generated (24 random bytes, base64url) and written there
 * with mode 0600 on first use. Creation is exclusive (`wx`), so two processes starting at once
 * (`npm start` and `npm run db:migrate`) end up with the same password. A file readable by
 * group or others is narrowed to 0600. The password is never logged.
 *
 * @throws Error naming the file when it exists but is empty, or cannot be read or written.
 */
export function embeddedPassword(dataDir: string): EmbeddedPassword {
  const file = embeddedPasswordFile(dataDir);
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  const generated = randomBytes(24).toString('base64url');
  try {
    writeFileSync(file, `${generated}\n`, { mode: 0o600, flag: 'wx' });
    return { password: generated, created: true, file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  const password = readFileSync(file, 'utf8').trim();
  if (password === '') {
    throw new Error(
      `The embedded server's password file ${file} is empty: delete it (and the data directory) or write the password into it.`,
    );
  }
  return { password, created: false, file };
}

/** Removes a password file this process created (the server never took its password). */
export function forgetEmbeddedPassword(secret: EmbeddedPassword): void {
  if (secret.created) unlinkSync(secret.file);
}
