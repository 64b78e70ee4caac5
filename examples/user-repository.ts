// UserRepository end to end: create, case-insensitive lookup, optimistic locking, keyset pages,
// a transaction the repository joins, and a streamed COPY import from a JSON-lines file.
// Run from the repository root: LOG_LEVEL=warn npx tsx examples/user-repository.ts
// It needs the users table: run `npm run db:migrate` (or `npm start` once) first. With no
// database configured it uses the embedded server of `npm start`. It adds about 1,000 users.
import { createReadStream, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import {
  loadConfig,
  createLogger,
  PostgresDatabase,
  OptimisticLockError,
  UserRepository,
  prepareMigrationTarget,
} from '../src/index.js';

const cfg = loadConfig();
const logger = createLogger(cfg.log);
const target = await prepareMigrationTarget(cfg, { logger }); // a no-op when a host is configured
const db = new PostgresDatabase(target.config.database.postgres, logger);
await db.connect();
const users = new UserRepository(db.driver(), {
  preparedStatements: cfg.database.postgres.preparedStatements,
});

const run = Date.now(); // emails are unique in any letter case: every run needs its own
const ada = await users.create({ email: `Ada.${run}@Example.com`, name: 'Ada Lovelace' });
await users.findByEmail(`ada.${run}@example.com`); // found: any letter case
const renamed = await users.update(ada.id, { name: 'Ada King' }, ada.version);
try {
  await users.update(ada.id, { name: 'Too late' }, ada.version); // version 1 is gone
} catch (err) {
  if (!(err instanceof OptimisticLockError)) throw err; // reload and retry, or report 409
}

let page = await users.list({ status: 'active', limit: 50 });
while (page.nextCursor) page = await users.list({ status: 'active', limit: 50, cursor: page.nextCursor });

// Both writes commit together or not at all; no trx is passed: the repository joins it.
await db.withTransaction(async () => {
  await users.softDelete(renamed.id);
  await users.upsertByEmail({ email: `grace.${run}@example.com`, name: 'Grace Hopper' });
});

// A large import from a JSON-lines file, streamed.
async function* readUsers(file: string): AsyncGenerator<unknown> {
  for await (const line of readline.createInterface({ input: createReadStream(file) }))
    yield JSON.parse(line);
}
const file = path.join(mkdtempSync(path.join(tmpdir(), 'users-')), 'users.jsonl');
const lines = Array.from({ length: 1000 }, (_, i) => ({
  email: `user${i}.${run}@example.com`,
  name: `User ${i}`,
}));
writeFileSync(file, lines.map((line) => JSON.stringify(line)).join('\n'));
const loaded = await users.copyIn(readUsers(file));
console.log({ renamed: renamed.name, loaded, active: await users.count({ status: 'active' }) });

await db.disconnect();
await target.stop(); // stops the embedded server only if this script started it
