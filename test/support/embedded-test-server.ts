import { mkdtempSync, chmodSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedServer } from '../../src/db/embedded/embedded-server.js';
import { freePort } from './free-port.js';

const TEST_SUPERUSER = 'postgres';
const TEST_SUPERUSER_PASSWORD = 'test-superuser-secret';

/** A throwaway embedded PostgreSQL on a free port with its data in a temp dir. */
export interface DedicatedServer {
  server: EmbeddedServer;
  port: number;
  /** Superuser URL of the given database (default `postgres`). */
  url(database?: string): string;
  /** Stops the server and deletes its data. */
  destroy(): Promise<void>;
}

/**
 * Starts an embedded PostgreSQL of its own, for tests that stop, restart or break the
 * server and must not disturb the shared one.
 */
export async function startDedicatedServer(
  port?: number,
  options: { maxPreparedTransactions?: number } = {},
): Promise<DedicatedServer> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgdl-test-'));
  chmodSync(root, 0o755); // the server runs as the "postgres" user when we are root
  const chosenPort = port ?? (await freePort());
  const server = new EmbeddedServer({
    dataDir: path.join(root, 'data'),
    port: chosenPort,
    username: TEST_SUPERUSER,
    password: TEST_SUPERUSER_PASSWORD,
    ...options,
  });
  await server.start();
  return {
    server,
    port: chosenPort,
    url: (database = 'postgres') =>
      `postgres://${TEST_SUPERUSER}:${TEST_SUPERUSER_PASSWORD}@127.0.0.1:${chosenPort}/${database}`,
    destroy: async () => {
      await server.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
