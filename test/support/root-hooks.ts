import { startTestServer, type TestServer as LayerTestServer } from '../../src/testing/index.js';
import { dropFinishedDatabases } from './test-database.js';

/** The run's server, as the suite's helpers use it. */
export interface TestServer {
  /** Superuser URL of the maintenance database; databases are created through it. */
  adminUrl: string;
  source: LayerTestServer['source'];
  server: LayerTestServer;
}

let current: TestServer | undefined;

/** The run's PostgreSQL server (set up once by the global fixture). */
export function testServer(): TestServer {
  if (!current)
    throw new Error('The test PostgreSQL server is not started (is .mocharc.yml requiring root-hooks?)');
  return current;
}

/**
 * Mocha global fixture: one server and one template database for the whole run, made by the
 * layer's own `pg-data-layer/testing` (what a service's suite uses): `PG_TEST_URL` (or
 * `TEST_DATABASE_URL`) if set; else Testcontainers when a Docker engine answers; else an
 * embedded PostgreSQL. The template holds every migration and the test seed.
 */
export async function mochaGlobalSetup(): Promise<void> {
  const server = await startTestServer({
    migrations: new URL('../../migrations', import.meta.url),
    seeds: new URL('../../seeds/test', import.meta.url),
    url: process.env.PG_TEST_URL || undefined,
  });
  current = { adminUrl: server.url, source: server.source, server };
}

export async function mochaGlobalTeardown(): Promise<void> {
  await dropFinishedDatabases();
  await current?.server.stop();
  current = undefined;
}
