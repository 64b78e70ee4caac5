/**
 * What a server on the network path (a fake: tiny, loopback, test/support/fake-pg-server.ts)
 * receives from the layer before it authenticates. Before issue 20 the fake received the
 * password in clear under `prefer` (it answered 'N' to the SSLRequest) and under `require` (a
 * certificate the client did not verify), and `prefer` stopped asking for TLS after one refusal.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import knexFactory from 'knex';
import { loadConfig } from '../../../../src/config/index.js';
import { knexMigrationConfig } from '../../../../src/db/migrations/migrations-config.js';
import type { PostgresConfig, SslMode } from '../../../../src/config/app-config.js';
import { sendCancelRequest } from '../../../../src/db/connection/cancel-request.js';
import { PgConnectionOpener } from '../../../../src/db/connection/pg-connection-opener.js';
import { ConnectionError } from '../../../../src/db/errors/errors.js';
import { captureLogger, WARN } from '../../../support/capture-logger.js';
import { startFakePgServer, type FakeAuth, type FakePgServer } from '../../../support/fake-pg-server.js';
import { useDatabases } from '../../../support/postgres-database-helpers.js';
import { makeCertificates, type TestCertificates } from '../../../support/test-certificates.js';
import { postgresConfigFromUrl } from '../../../support/test-database.js';

const PASSWORD = 'on-path-secret';

describe('The password on the wire (a fake server on the network path)', function () {
  this.timeout(30_000);
  let certDir: string;
  let certs: TestCertificates;
  let fake: FakePgServer | undefined;
  const open = useDatabases();

  before(() => {
    certDir = mkdtempSync(path.join(os.tmpdir(), 'pgdl-fake-tls-'));
    certs = makeCertificates(certDir);
  });
  after(() => rmSync(certDir, { recursive: true, force: true }));
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  const start = async (auth: FakeAuth, tls: boolean): Promise<FakePgServer> => {
    fake = await startFakePgServer({ auth, ...(tls ? { tls: { cert: certs.cert, key: certs.key } } : {}) });
    return fake;
  };
  const config = (server: FakePgServer, overrides: Partial<PostgresConfig>): PostgresConfig => ({
    ...postgresConfigFromUrl(new URL(`postgres://app:${PASSWORD}@localhost:${server.port}/app`)),
    maxRetries: 3,
    retryDelay: 10,
    ...overrides,
  });
  const passwordsSent = (server: FakePgServer): string[] =>
    server.connections.flatMap((c) => c.passwordMessages.map((m) => m.toString('utf8')));

  const cases: Array<{ sslMode: SslMode; tls: boolean; auth: 'cleartext' | 'md5'; over: string }> = [
    { sslMode: 'prefer', tls: false, auth: 'cleartext', over: "after the server's 'N'" },
    { sslMode: 'prefer', tls: false, auth: 'md5', over: "after the server's 'N'" },
    { sslMode: 'require', tls: true, auth: 'cleartext', over: 'over TLS with an unverified certificate' },
    { sslMode: 'require', tls: true, auth: 'md5', over: 'over TLS with an unverified certificate' },
    { sslMode: 'disable', tls: false, auth: 'cleartext', over: 'without TLS' },
  ];
  for (const { sslMode, tls, auth, over } of cases) {
    it(`${sslMode}: refuses a ${auth} password request ${over}, sending nothing, with a ConnectionError naming the setting`, async () => {
      const server = await start(auth, tls);
      const { db } = open(config(server, { sslMode }));
      const err = (await db.connect().catch((e: unknown) => e)) as ConnectionError;
      expect(err).to.be.instanceOf(ConnectionError);
      expect(err.attempts).to.equal(1);
      expect(err.hint).to.contain('DB_ALLOW_INSECURE_AUTH');
      expect(err.message).to.contain('INSECURE_PASSWORD_AUTH');
      // The fake did ask (a startup packet reached it), and got no answer.
      expect(server.connections.some((c) => c.startup?.user === 'app')).to.equal(true);
      expect(server.connections.every((c) => c.tls === tls || !c.startup)).to.equal(true);
      expect(passwordsSent(server)).to.deep.equal([]);
    });
  }

  it('sends the password only when allowInsecurePasswordAuth accepts the risk (the fake sees it)', async () => {
    const server = await start('cleartext', true);
    const { db } = open(config(server, { sslMode: 'require', allowInsecurePasswordAuth: true }));
    await db.connect().catch(() => {});
    expect(passwordsSent(server)).to.include(`${PASSWORD}\0`);
  });

  it('answers a cleartext request over verify-full (the certificate proves the server)', async () => {
    const server = await start('cleartext', true);
    const { db } = open(config(server, { sslMode: 'verify-full', sslRootCert: certs.ca }));
    await db.connect().catch(() => {});
    expect(passwordsSent(server)).to.include(`${PASSWORD}\0`);
    expect(server.connections.every((c) => c.tls)).to.equal(true);
  });

  it('prefer: asks for TLS first on every new connection, and warns when connections turn plain', async () => {
    const server = await start('trust', false);
    const log = captureLogger();
    const opener = new PgConnectionOpener(config(server, { sslMode: 'prefer' }), log.logger);
    for (let i = 0; i < 3; i++) await (await opener.open()).end();
    // Each open: one connection that asked for TLS and got 'N', then a plain one.
    expect(server.connections.filter((c) => c.sslRequested)).to.have.length(3);
    expect(server.connections.filter((c) => !c.sslRequested && c.startup)).to.have.length(3);
    const warnings = log.lines.filter((l) => l.level === WARN && /does not offer TLS/.test(l.msg));
    expect(warnings, 'once per change to plain, never silent').to.have.length(1);
  });

  describe('the migration connections (knexMigrationConfig: the knex CLI, migrate-on-start)', () => {
    const quiet = { warn: () => {}, error: () => {}, debug: () => {}, deprecate: () => {} };
    const migrationKnex = (server: FakePgServer, sslMode: SslMode) =>
      knexFactory({
        log: quiet,
        ...knexMigrationConfig(
          loadConfig({
            env: {
              APP_ENV: 'test',
              DB_HOST: 'localhost',
              DB_PORT: String(server.port),
              DB_PASSWORD: PASSWORD,
              DB_SSLMODE: sslMode,
            },
            configDir: certDir,
            envFile: false,
          }),
        ),
      });

    for (const [sslMode, tls] of [
      ['require', true],
      ['prefer', false],
    ] as const) {
      it(`${sslMode}: refuse a cleartext password request the same way, sending nothing`, async () => {
        const server = await start('cleartext', tls);
        const knex = migrationKnex(server, sslMode);
        try {
          const err = (await knex.raw('select 1').catch((e: unknown) => e)) as Error;
          expect(err.message).to.contain('DB_ALLOW_INSECURE_AUTH');
        } finally {
          await knex.destroy();
        }
        expect(server.connections.some((c) => c.startup?.user === 'app')).to.equal(true);
        expect(passwordsSent(server)).to.deep.equal([]);
      });
    }
  });

  describe('a CancelRequest for a TLS connection', () => {
    const target = (server: FakePgServer) => ({
      host: 'localhost',
      port: server.port,
      processID: 4242,
      secretKey: -7,
    });

    it('goes inside TLS, verified against the CA like its connection', async () => {
      const server = await start('trust', true);
      await sendCancelRequest(
        { ...target(server), ssl: { rejectUnauthorized: true, ca: readFileSync(certs.ca, 'utf8') } },
        5_000,
      );
      expect(server.connections).to.have.length(1);
      expect(server.connections[0]).to.deep.include({
        sslRequested: true,
        tls: true,
        cancel: { processID: 4242, secretKey: -7 },
      });
    });

    it("is never sent in clear when the server answers 'N'", async () => {
      const server = await start('trust', false);
      const err = (await sendCancelRequest(
        { ...target(server), ssl: { rejectUnauthorized: false } },
        5_000,
      ).catch((e: unknown) => e)) as { code?: string };
      expect(err.code).to.equal('CANCEL_TLS_REFUSED');
      expect(server.connections.map((c) => c.cancel)).to.deep.equal([undefined]);
    });

    it('fails when the certificate does not verify, sending nothing', async () => {
      const server = await start('trust', true);
      const err = (await sendCancelRequest(
        { ...target(server), ssl: { rejectUnauthorized: true, ca: readFileSync(certs.otherCa, 'utf8') } },
        5_000,
      ).catch((e: unknown) => e)) as Error;
      expect(err).to.be.instanceOf(Error);
      expect(server.connections.map((c) => c.cancel)).to.deep.equal([undefined]);
    });
  });

  describe('channelBinding require', () => {
    for (const auth of ['scram', 'trust'] as const) {
      it(`refuses a verified server that ${auth === 'scram' ? 'offers SCRAM without PLUS' : 'lets the client in without SCRAM'}`, async () => {
        const server = await start(auth, true);
        const { db } = open(
          config(server, { sslMode: 'verify-full', sslRootCert: certs.ca, channelBinding: 'require' }),
        );
        const err = (await db.connect().catch((e: unknown) => e)) as ConnectionError;
        expect(err).to.be.instanceOf(ConnectionError);
        expect(err.attempts).to.equal(1);
        expect(err.hint).to.contain('DB_CHANNEL_BINDING');
        expect(passwordsSent(server)).to.deep.equal([]);
      });
    }
  });
});
