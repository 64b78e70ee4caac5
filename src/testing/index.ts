/**
 * `pg-data-layer/testing`: seeded template databases and the rollback sandbox, for a
 * service's own tests (docs/testing.md, "In your service").
 */
export { startTestServer } from './test-server.js';
export { withRollback } from './with-rollback.js';
export { startDedicatedServer, freePort } from './embedded-test-server.js';
export { postgresConfigFromUrl } from './test-database.js';

export type { TestServer, TestServerOptions, TestServerSource } from './test-server.js';
export type { TestDatabase } from './test-database.js';
export type { DedicatedServer } from './embedded-test-server.js';
