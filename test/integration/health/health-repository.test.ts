import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import pino from 'pino';
import { PostgresDatabase } from '../../../src/db/postgres-database.js';
import type { PoolStats } from '../../../src/db/index.js';
import { HealthRepository } from '../../../src/health/health-repository.js';
import { waitFor } from '../../support/service-fixture.js';
import { adminQuery, createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const MIGRATION = '20250101000000_create_users.ts';
const AUDIT_MIGRATION = '20261205000000_create_audit_log.ts';
const MIGRATIONS = [MIGRATION, AUDIT_MIGRATION];

describe('HealthRepository', () => {
  let testDb: TestDatabase;
  let db: PostgresDatabase;
  let health: HealthRepository;

  before(async () => {
    testDb = await createTestDatabase();
    db = new PostgresDatabase(testDb.config(), pino({ level: 'silent' }));
    await db.connect();
    health = new HealthRepository(db);
  });

  after(async () => {
    await db?.close();
    await testDb?.drop();
  });

  describe('ping()', () => {
    it('returns the round-trip time in milliseconds', async () => {
      const started = performance.now();
      const ms = await health.ping();
      const elapsedMs = performance.now() - started;
      expect(ms).to.be.greaterThan(0).and.at.most(elapsedMs);
    });

    it('includes the time the server takes to answer', async () => {
      await db.driver().transaction(async (trx) => {
        // pg runs one statement at a time per connection: the ping's `select 1` waits for the sleep.
        const sleep = trx.raw('select pg_sleep(0.3)').then(() => undefined);
        const started = performance.now();
        const ms = await health.ping(trx);
        const elapsedMs = performance.now() - started;
        await sleep;
        expect(ms).to.be.at.least(250).and.at.most(elapsedMs);
      });
    });
  });

  describe('serverInfo()', () => {
    it('describes the server, database and user', async () => {
      const info = await health.serverInfo();
      const { rows } = await adminQuery("select current_setting('server_version') as v");
      expect(info).to.include({
        version: (rows[0] as { v: string }).v,
        inRecovery: false,
        database: testDb.name,
      });
      expect(info.versionNum).to.be.at.least(100000);
      expect(info.user).to.equal(testDb.config().username);
    });
  });

  describe('migrationStatus()', () => {
    it('reports every migration applied on a template-cloned database', async () => {
      expect(await health.migrationStatus()).to.deep.equal({
        applied: MIGRATIONS,
        pending: [],
        latest: AUDIT_MIGRATION,
        missingFiles: [],
        upToDate: true,
      });
    });

    it('reports a new file as pending and an applied migration without a file as missing', async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'pgdl-migrations-'));
      try {
        writeFileSync(path.join(dir, '20990101000000_future.ts'), 'export {};');
        writeFileSync(path.join(dir, 'README.md'), 'not a migration');
        const status = await new HealthRepository(db, { migrationsDirectory: dir }).migrationStatus();
        expect(status).to.deep.equal({
          applied: MIGRATIONS,
          pending: ['20990101000000_future.ts'],
          latest: AUDIT_MIGRATION,
          missingFiles: MIGRATIONS,
          upToDate: false,
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('reports everything pending on an empty database and creates nothing there', async () => {
      const name = `pgdl_empty_${process.pid}`;
      await adminQuery(`create database ${name}`);
      const empty = new PostgresDatabase({ ...testDb.config(), name }, pino({ level: 'silent' }));
      try {
        await empty.connect();
        const status = await new HealthRepository(empty).migrationStatus();
        expect(status).to.include({ latest: null, upToDate: false });
        expect(status.applied).to.deep.equal([]);
        expect(status.pending).to.deep.equal(MIGRATIONS);
        const left = await empty
          .driver()
          .raw<{ rows: Array<{ t: string | null }> }>("select to_regclass('knex_migrations')::text as t");
        expect(left.rows[0]?.t).to.equal(null);
      } finally {
        await empty.close();
        await adminQuery(`drop database if exists ${name} with (force)`);
      }
    });

    it('joins the transaction it is given', async () => {
      const undo = new Error('undo');
      const outcome = await db
        .driver()
        .transaction(async (trx) => {
          await trx('knex_migrations').del();
          expect((await health.migrationStatus(trx)).pending).to.deep.equal(MIGRATIONS);
          throw undo;
        })
        .catch((err: unknown) => err);
      expect(outcome).to.equal(undo);
      expect((await health.migrationStatus()).upToDate).to.equal(true);
    });
  });

  describe('poolStats()', () => {
    it('reports a connection held by a transaction as in use, and idle again once it ends', async () => {
      const trx = await db.driver().transaction();
      try {
        const held = health.poolStats();
        expect(held).to.include({ maxOpenConnections: testDb.config().maxOpenConns, inUse: 1 });
        expect(held.openConnections).to.equal(held.inUse + held.idle);
      } finally {
        await trx.rollback();
      }
      expect(health.poolStats()).to.include({ inUse: 0, pendingAcquires: 0 });
    });

    it('counts an acquire that waited for the only connection, and how long it waited', async () => {
      const single = new PostgresDatabase(testDb.config({ maxOpenConns: 1 }), pino({ level: 'silent' }));
      await single.connect();
      try {
        const stats = new HealthRepository(single);
        expect(stats.poolStats()).to.include({ maxOpenConnections: 1, waitCount: 0, pendingAcquires: 0 });
        const trx = await single.driver().transaction();
        const queued = single
          .driver()
          .raw('select 1')
          .then(() => undefined);
        let waiting: PoolStats;
        try {
          // Waits on the pool itself, not on what is under test.
          await waitFor(
            () => Promise.resolve(single.getConnectionStats().pendingAcquires === 1),
            2_000,
            'a queued acquire',
          );
          waiting = stats.poolStats();
          await new Promise((r) => setTimeout(r, 100));
        } finally {
          await trx.rollback();
          await queued;
        }
        expect(waiting).to.include({ inUse: 1, idle: 0, pendingAcquires: 1 });
        const after = stats.poolStats();
        expect(after).to.include({ inUse: 0, pendingAcquires: 0, waitCount: 1 });
        expect(after.waitDurationMs).to.be.at.least(90);
      } finally {
        await single.close();
      }
    });
  });
});
