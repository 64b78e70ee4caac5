import { withPgClient } from '../../src/db/connection/with-pg-client.js';
import { startTestServer, type TestServer } from './pg-server.js';
import { TEMPLATE_DATABASE, dropFinishedDatabases } from './test-database.js';
import { prepareTemplate } from './template.js';

let server: TestServer | undefined;

/** The run's PostgreSQL server (set up once by the global fixture). */
export function testServer(): TestServer {
  if (!server)
    throw new Error('The test PostgreSQL server is not started (is .mocharc.yml requiring root-hooks?)');
  return server;
}

/** Mocha global fixture: one server and one template database for the whole run. */
export async function mochaGlobalSetup(): Promise<void> {
  const started = Date.now();
  server = await startTestServer();
  await withPgClient(server.adminUrl, async (admin) => {
    await admin.query(`drop database if exists ${TEMPLATE_DATABASE} with (force)`);
    await admin.query(`create database ${TEMPLATE_DATABASE}`);
  });
  const templateUrl = new URL(server.adminUrl);
  templateUrl.pathname = `/${TEMPLATE_DATABASE}`;
  await prepareTemplate(templateUrl.toString());
  console.log(`test PostgreSQL: ${server.source} (ready in ${Date.now() - started} ms)`);
}

export async function mochaGlobalTeardown(): Promise<void> {
  await dropFinishedDatabases();
  await server?.stop();
  server = undefined;
}
