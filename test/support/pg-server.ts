import { existsSync } from 'node:fs';
import { startDedicatedServer, type DedicatedServer } from './embedded-test-server.js';

/** Where the test run's PostgreSQL server came from. */
type ServerSource = 'PG_TEST_URL' | 'testcontainers' | 'embedded';

export interface TestServer {
  source: ServerSource;
  /** Superuser URL of the maintenance database; databases are created through it. */
  adminUrl: string;
  stop(): Promise<void>;
}

/**
 * Picks the run's server: `PG_TEST_URL` if set; else Testcontainers' PostgreSQL module
 * when a Docker engine answers; else an embedded PostgreSQL in a temp dir.
 */
export async function startTestServer(): Promise<TestServer> {
  const given = process.env.PG_TEST_URL;
  if (given) return { source: 'PG_TEST_URL', adminUrl: given, stop: async () => {} };
  if (await dockerAnswers()) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    // max_prepared_transactions > 0 for two-phase commit, as the embedded server has it.
    const container = await new PostgreSqlContainer('postgres:18')
      .withCommand(['postgres', '-c', 'max_prepared_transactions=100'])
      .start();
    const url = new URL(container.getConnectionUri());
    url.pathname = '/postgres';
    return {
      source: 'testcontainers',
      adminUrl: url.toString(),
      stop: async () => {
        await container.stop();
      },
    };
  }
  const dedicated: DedicatedServer = await startDedicatedServer();
  return { source: 'embedded', adminUrl: dedicated.url(), stop: () => dedicated.destroy() };
}

/** True when a Docker engine answers within a second (the client alone is not enough). */
async function dockerAnswers(): Promise<boolean> {
  const host = process.env.DOCKER_HOST;
  if (!host && !existsSync('/var/run/docker.sock')) return false;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await Promise.race([
      getContainerRuntimeClient(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('docker timeout')), 3000).unref()),
    ]);
    return true;
  } catch {
    return false;
  }
}
