import { execFileSync } from 'node:child_process';
import { appendFileSync, chownSync, copyFileSync, chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { expect } from 'chai';
import pg from 'pg';
import sinon from 'sinon';
import type { PostgresConfig } from '../../../../src/config/app-config.js';
import { ConnectionError } from '../../../../src/db/errors/errors.js';
import type { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { sendCancelRequest, cancelRequestPacket } from '../../../../src/db/connection/cancel-request.js';
import { PgConnectionOpener } from '../../../../src/db/connection/pg-connection-opener.js';
import { cancelTargetOf } from '../../../../src/db/knex-internals.js';
import { captureLogger } from '../../../support/capture-logger.js';
import { startDedicatedServer, type DedicatedServer } from '../../../support/embedded-test-server.js';
import { postgresConfigFromUrl } from '../../../support/test-database.js';
import { useDatabases } from '../../../support/postgres-database-helpers.js';
import { makeCertificates, type TestCertificates } from '../../../support/test-certificates.js';

describe('PostgresDatabase TLS modes (dedicated server with TLS)', function () {
  this.timeout(60_000);
  let ds: DedicatedServer;
  let certs: TestCertificates;
  let certDir: string;
  const open = useDatabases();
  const make = (overrides: Partial<PostgresConfig>) =>
    open({ ...postgresConfigFromUrl(new URL(ds.url())), maxRetries: 3, retryDelay: 10, ...overrides }).db;
  const tlsInUse = async (db: PostgresDatabase): Promise<boolean> => {
    const { rows } = await db
      .driver()
      .raw<{ rows: Array<{ ssl: boolean }> }>('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
    return rows[0]?.ssl ?? false;
  };

  before(async () => {
    certDir = mkdtempSync(path.join(os.tmpdir(), 'pgdl-tls-'));
    certs = makeCertificates(certDir);
    ds = await startDedicatedServer();
    await ds.server.stop();
    const dataDir = ds.server.dataDir;
    copyFileSync(certs.cert, path.join(dataDir, 'server.crt'));
    copyFileSync(certs.key, path.join(dataDir, 'server.key'));
    chmodSync(path.join(dataDir, 'server.key'), 0o600);
    if (process.getuid?.() === 0) {
      // As root the server runs as "postgres", and it refuses a key it does not own.
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
      for (const f of ['server.crt', 'server.key']) chownSync(path.join(dataDir, f), uid, gid);
    }
    appendFileSync(
      path.join(dataDir, 'postgresql.conf'),
      "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
    );
    await ds.server.start();
  });
  after(async () => {
    await ds?.destroy();
    rmSync(certDir, { recursive: true, force: true });
  });

  it('encrypts without verifying with require', async () => {
    const db = make({ sslMode: 'require' });
    await db.connect();
    expect(await tlsInUse(db)).to.equal(true);
  });

  it('encrypts with prefer when the server offers TLS', async () => {
    const db = make({ sslMode: 'prefer' });
    await db.connect();
    expect(await tlsInUse(db)).to.equal(true);
  });

  it('stays in plain TCP with disable even when the server offers TLS', async () => {
    const db = make({ sslMode: 'disable' });
    await db.connect();
    expect(await tlsInUse(db)).to.equal(false);
  });

  it('accepts a chain from the given CA without checking the host name with verify-ca', async () => {
    const db = make({ sslMode: 'verify-ca', sslRootCert: certs.ca, host: '127.0.0.1' });
    await db.connect();
    expect(await tlsInUse(db)).to.equal(true);
  });

  it('accepts the right CA and host name with verify-full', async () => {
    const db = make({ sslMode: 'verify-full', sslRootCert: certs.ca, host: 'localhost' });
    await db.connect();
    expect(await tlsInUse(db)).to.equal(true);
    expect((await db.health()).status).to.equal('up');
  });

  it('fails at once with verify-full when the certificate does not name the host', async () => {
    const db = make({ sslMode: 'verify-full', sslRootCert: certs.ca, host: '127.0.0.1' });
    const err = (await db.connect().catch((e: unknown) => e)) as ConnectionError;
    expect(err).to.be.instanceOf(ConnectionError);
    expect(err.attempts).to.equal(1);
    expect(err.hint).to.match(/certificate failed verification/);
  });

  it('fails at once with verify-ca when the chain leads to another CA', async () => {
    const db = make({ sslMode: 'verify-ca', sslRootCert: certs.otherCa, host: '127.0.0.1' });
    const err = (await db.connect().catch((e: unknown) => e)) as ConnectionError;
    expect(err).to.be.instanceOf(ConnectionError);
    expect(err.attempts).to.equal(1);
    expect(err.hint).to.match(/certificate failed verification/);
  });

  it('fails at once with a hint when sslRootCert cannot be read', async () => {
    const db = make({
      sslMode: 'verify-full',
      sslRootCert: path.join(certDir, 'missing.crt'),
      host: 'localhost',
    });
    const err = (await db.connect().catch((e: unknown) => e)) as ConnectionError;
    expect(err).to.be.instanceOf(ConnectionError);
    expect(err.attempts).to.equal(1);
    expect(err.hint).to.match(/\bDB_SSL_ROOT_CERT\b/);
  });

  describe('channel binding', () => {
    afterEach(() => sinon.restore());
    /** The SASL mechanism of every SCRAM exchange pg starts from now on, as it goes on the wire. */
    const mechanismsSent = (): (() => Set<string>) => {
      // pg's types omit the method; it is what writes SASLInitialResponse (pg/lib/connection.js).
      const proto = pg.Connection.prototype as unknown as { sendSASLInitialResponseMessage(m: string): void };
      const spy = sinon.spy(proto, 'sendSASLInitialResponseMessage');
      return () => new Set(spy.args.map((a) => a[0]));
    };

    it('authenticates with SCRAM-SHA-256-PLUS over TLS by default (the server checks the binding)', async () => {
      const sent = mechanismsSent();
      const db = make({ sslMode: 'verify-full', sslRootCert: certs.ca, host: 'localhost' });
      await db.connect();
      expect(await tlsInUse(db)).to.equal(true);
      expect(sent()).to.deep.equal(new Set(['SCRAM-SHA-256-PLUS']));
    });

    it('connects with channelBinding require, and binds nothing with channelBinding disable', async () => {
      const bound = mechanismsSent();
      const required = make({
        sslMode: 'verify-full',
        sslRootCert: certs.ca,
        host: 'localhost',
        channelBinding: 'require',
      });
      await required.connect();
      expect((await required.health()).status).to.equal('up');
      expect(bound()).to.deep.equal(new Set(['SCRAM-SHA-256-PLUS']));
      sinon.restore();
      const sent = mechanismsSent();
      const unbound = make({
        sslMode: 'verify-full',
        sslRootCert: certs.ca,
        host: 'localhost',
        channelBinding: 'disable',
      });
      await unbound.connect();
      expect(sent()).to.deep.equal(new Set(['SCRAM-SHA-256']));
    });
  });

  describe('CancelRequest', () => {
    /** A TCP relay to the server that keeps every byte each client sent, per connection. */
    let relay: net.Server;
    let sent: Buffer[][];
    let relayPort: number;
    const sockets = new Set<net.Socket>();
    beforeEach(async () => {
      sent = [];
      relay = net.createServer((client) => {
        sockets.add(client);
        const chunks: Buffer[] = [];
        sent.push(chunks);
        const upstream = net.connect(ds.port, '127.0.0.1');
        sockets.add(upstream);
        client.on('data', (c: Buffer) => chunks.push(Buffer.from(c)));
        client.pipe(upstream).pipe(client);
        client.on('error', () => upstream.destroy());
        upstream.on('error', () => client.destroy());
      });
      await new Promise<void>((resolve) => relay.listen(0, 'localhost', resolve));
      relayPort = (relay.address() as net.AddressInfo).port;
    });
    afterEach(async () => {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    });

    const sleepAndCancel = async (
      overrides: Partial<PostgresConfig>,
    ): Promise<{ error: { code?: string }; packet: Buffer; cancelStream: Buffer }> => {
      const cfg = {
        ...postgresConfigFromUrl(new URL(ds.url())),
        host: 'localhost',
        port: relayPort,
        ...overrides,
      };
      const client = await new PgConnectionOpener(cfg, captureLogger().logger).open();
      try {
        const sleeping = client.query('select pg_sleep(60)').then(
          () => ({}),
          (e: { code?: string }) => e,
        );
        // Cancel only once the backend runs the statement (a cancel to an idle backend is ignored).
        const watcher = await new PgConnectionOpener(cfg, captureLogger().logger).open();
        try {
          for (;;) {
            const { rows } = await watcher.query<{ n: number }>(
              "select count(*)::int as n from pg_stat_activity where pid = $1 and state = 'active'",
              [client.processID],
            );
            if (rows[0]?.n === 1) break;
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
        } finally {
          await watcher.end();
        }
        const target = cancelTargetOf(client);
        expect(target).not.to.equal(undefined);
        const before = sent.length;
        await sendCancelRequest(target!, 5_000);
        const error = await sleeping;
        expect(sent.length).to.equal(before + 1);
        return {
          error,
          packet: cancelRequestPacket(target!.processID, target!.secretKey),
          cancelStream: Buffer.concat(sent[before]!),
        };
      } finally {
        await client.end();
      }
    };

    it('goes inside TLS with verify-full, reaches the server and cancels the statement', async () => {
      const { error, packet, cancelStream } = await sleepAndCancel({
        sslMode: 'verify-full',
        sslRootCert: certs.ca,
      });
      expect(error.code).to.equal('57014'); // query_canceled
      // An SSLRequest (length 8, code 80877103) first; the backend key never in clear on any connection.
      expect(cancelStream.subarray(0, 8).toString('hex')).to.equal('0000000804d2162f');
      for (const stream of sent) expect(Buffer.concat(stream).includes(packet)).to.equal(false);
    });

    it('stays plain TCP when its connection was (sslMode disable)', async () => {
      const { error, packet, cancelStream } = await sleepAndCancel({ sslMode: 'disable' });
      expect(error.code).to.equal('57014');
      expect(cancelStream.equals(packet)).to.equal(true);
    });
  });
});
