import { inspect } from 'node:util';
import { expect } from 'chai';
import type { PostgresConfig } from '../../../../src/config/app-config.js';
import { ConnectionError } from '../../../../src/db/errors/errors.js';
import type { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { WARN } from '../../../support/capture-logger.js';
import { freePort } from '../../../support/free-port.js';
import { adminQuery, useTestDatabase } from '../../../support/test-database.js';
import { connectAttempts, useDatabases } from '../../../support/postgres-database-helpers.js';

describe('PostgresDatabase', () => {
  const testDb = useTestDatabase();
  const open = useDatabases();
  const make = (overrides: Partial<PostgresConfig> = {}) => open(testDb().config(overrides));

  describe('connect()', () => {
    it('connects and proves the pool with a query', async () => {
      const { db, metrics } = make();
      await db.connect();
      expect(await connectAttempts(metrics, 'success')).to.equal(1);
      const { rows } = await db.driver().raw<{ rows: Array<{ n: number }> }>('select 1 as n');
      expect(rows[0]?.n).to.equal(1);
    });

    it('fails at once with one attempt when the password is wrong, and never shows the password', async () => {
      const secret = 'wrong-Secret-4711';
      const { db, log, metrics } = make({ password: secret, maxRetries: 5, retryDelay: 10 });
      const err = await db.connect().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(ConnectionError);
      const ce = err as ConnectionError;
      expect(ce.attempts).to.equal(1);
      expect(ce.hint).to.match(/DB_PASSWORD/);
      expect((ce.cause as { code?: string }).code).to.equal('28P01');
      expect(await connectAttempts(metrics, 'retry')).to.equal(0);
      expect(await connectAttempts(metrics, 'failure')).to.equal(1);
      for (const shown of [ce.message, String(ce.stack), inspect(ce, { depth: 10 }), log.text(), inspect(db)])
        expect(shown).not.to.include(secret);
    });

    it('gives up after exactly maxRetries + 1 attempts when the server is unreachable', async () => {
      const { db, log, metrics } = make({
        port: await freePort(),
        maxRetries: 2,
        retryDelay: 20,
        maxRetryDelay: 40,
      });
      const err = (await db.connect().catch((e: unknown) => e)) as ConnectionError;
      expect(err).to.be.instanceOf(ConnectionError);
      expect(err.attempts).to.equal(3);
      expect(err.hint).to.match(/DB_HOST and DB_PORT/);
      expect(await connectAttempts(metrics, 'retry')).to.equal(2);
      expect(await connectAttempts(metrics, 'failure')).to.equal(1);
      const warnings = log.lines.filter((l) => l.level === WARN && /retrying/.test(l.msg));
      expect(warnings.map((l) => l.attempt)).to.deep.equal([1, 2]);
    });

    it('stops retrying promptly when the abort signal fires', async () => {
      const { db } = make({ port: await freePort(), maxRetries: 1_000, retryDelay: 100, maxRetryDelay: 200 });
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('shutting down')), 300);
      const started = Date.now();
      const err = (await db.connect(controller.signal).catch((e: unknown) => e)) as ConnectionError;
      const elapsed = Date.now() - started;
      expect(err).to.be.instanceOf(ConnectionError);
      expect(err.message).to.match(/aborted/);
      expect((err.cause as Error).message).to.equal('shutting down');
      expect(err.attempts).to.be.greaterThan(0).and.lessThan(20);
      expect(elapsed).to.be.lessThan(300 + 250);
    });

    it('fails at once with a hint when the database does not exist, and succeeds once it does', async () => {
      const name = `${testDb().name}_later`;
      const { db } = make({ name, maxRetries: 3, retryDelay: 10 });
      const err = (await db.connect().catch((e: unknown) => e)) as ConnectionError;
      expect(err).to.be.instanceOf(ConnectionError);
      expect(err.attempts).to.equal(1);
      expect(err.hint).to.match(/does the database exist/);
      await adminQuery(`create database ${name}`);
      try {
        // A failed connect is not remembered (prisma#19182): the same instance now connects.
        await db.connect();
        await db.driver().raw('select 1');
      } finally {
        await db.close();
        await adminQuery(`drop database if exists ${name} with (force)`);
      }
    });

    it('connects again after close()', async () => {
      const { db } = make();
      await db.connect();
      await db.close();
      await db.connect();
      const { rows } = await db.driver().raw<{ rows: Array<{ n: number }> }>('select 2 as n');
      expect(rows[0]?.n).to.equal(2);
    });
  });

  describe('sslMode', () => {
    const sslInUse = async (db: PostgresDatabase): Promise<boolean> => {
      const { rows } = await db
        .driver()
        .raw<{ rows: Array<{ ssl: boolean }> }>('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
      return rows[0]?.ssl ?? false;
    };

    it('uses plain TCP with disable', async () => {
      const { db } = make({ sslMode: 'disable' });
      await db.connect();
      expect(await sslInUse(db)).to.equal(false);
    });

    it('falls back to plain TCP with prefer when the server offers no TLS', async () => {
      const { db, log } = make({ sslMode: 'prefer' });
      await db.connect();
      expect(await sslInUse(db)).to.equal(false);
      expect(log.lines.some((l) => /does not offer TLS/.test(l.msg))).to.equal(true);
      expect((await db.health()).status).to.equal('up');
    });

    it('fails at once with a clear ConnectionError with require when the server offers no TLS', async () => {
      const { db } = make({ sslMode: 'require', maxRetries: 3, retryDelay: 10 });
      const err = (await db.connect().catch((e: unknown) => e)) as ConnectionError;
      expect(err).to.be.instanceOf(ConnectionError);
      expect(err.attempts).to.equal(1);
      expect(err.hint).to.match(/does not offer TLS/);
      const health = await db.health();
      expect(health.status).to.equal('down');
      expect(health.error).to.match(/does not support SSL/);
    });
  });

  describe('new connections', () => {
    it('carry the server-side limits and application_name from the startup packet', async () => {
      const { db } = make({
        statementTimeout: 1_500,
        lockTimeout: 700,
        idleInTransactionSessionTimeout: 0,
        applicationName: 'pgdl-startup-test',
      });
      const { rows } = await db.driver().raw<{
        rows: Array<{ st: string; lt: string; iit: string; app: string }>;
      }>(
        `select current_setting('statement_timeout') as st, current_setting('lock_timeout') as lt,
                current_setting('idle_in_transaction_session_timeout') as iit,
                current_setting('application_name') as app`,
      );
      expect(rows[0]).to.deep.equal({ st: '1500ms', lt: '700ms', iit: '0', app: 'pgdl-startup-test' });
    });

    it('never expose the password through inspect, JSON or builders', async () => {
      const { db } = make();
      await db.connect();
      const password = testDb().config().password;
      expect(password).to.have.length.greaterThan(3);
      expect(db.config.password).to.equal(password);
      const builder = db.driver()('pg_class').select('relname');
      const client = db.driver().client as {
        acquireConnection(): Promise<unknown>;
        releaseConnection(c: unknown): Promise<void>;
      };
      const conn = await client.acquireConnection();
      try {
        for (const shown of [
          inspect(db, { depth: 6 }),
          inspect(db.config),
          JSON.stringify(db.config),
          inspect(db.driver(), { depth: 4 }),
          inspect(builder, { depth: 6 }),
          inspect(conn, { depth: 4 }),
        ])
          expect(shown).not.to.include(password);
      } finally {
        await client.releaseConnection(conn);
      }
    });
  });
});
