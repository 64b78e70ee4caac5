// Run: npm start (with DATABASE_URL or DB_HOST set, or the embedded server when none is).
import { PostgresDatabase, createLogger, prepareMigrationTarget } from 'pg-data-layer';
import { buildApp } from './app.js';
import { loadServiceConfig } from './config.js';

const config = loadServiceConfig();
const logger = createLogger(config.log);
const target = await prepareMigrationTarget(config, { logger });
const db = new PostgresDatabase(target.config.database.postgres, logger, { queryLog: config.log });
await db.connect();
const app = await buildApp(db, logger, config.orders);
await app.listen({ host: config.server.host, port: config.server.port });

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void (async () => {
      await app.close();
      await db.disconnect();
      await target.stop();
    })();
  });
}
