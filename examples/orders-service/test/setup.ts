// One test server for the run: TEST_DATABASE_URL when set, else Testcontainers or an embedded
// PostgreSQL; the template holds this service's migrations and test seeds.
import { startTestServer, type TestServer } from 'pg-data-layer/testing';

let server: TestServer | undefined;

export function testServer(): TestServer {
  if (!server) throw new Error('the test server is started by the mocha global setup');
  return server;
}

export async function mochaGlobalSetup(): Promise<void> {
  server = await startTestServer({
    migrations: new URL('../migrations', import.meta.url),
    seeds: new URL('../seeds/test', import.meta.url),
  });
}

export async function mochaGlobalTeardown(): Promise<void> {
  await server?.stop();
}
