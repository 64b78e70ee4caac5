import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  chownSync,
  copyFileSync,
  chmodSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { PostgresConfig } from '../../../../src/config/app-config.js';
import { ConnectionError } from '../../../../src/db/errors/errors.js';
import type { PostgresDatabase } from '../../../../src/db/postgres-database.js';
import { startDedicatedServer, type DedicatedServer } from '../../../support/embedded-test-server.js';
import { postgresConfigFromUrl } from '../../../support/test-database.js';
import { useDatabases } from '../../../support/postgres-database-helpers.js';

/** A CA, and a server certificate it signed for the name "localhost" only. */
function makeCertificates(dir: string): { ca: string; otherCa: string; cert: string; key: string } {
  const ssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  };
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=pgdl test CA',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
  );
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=other CA',
    '-keyout',
    'other.key',
    '-out',
    'other.crt',
  );
  ssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
  );
  writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=DNS:localhost\n');
  ssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'san.ext',
    '-out',
    'server.crt',
  );
  return {
    ca: path.join(dir, 'ca.crt'),
    otherCa: path.join(dir, 'other.crt'),
    cert: path.join(dir, 'server.crt'),
    key: path.join(dir, 'server.key'),
  };
}

describe('PostgresDatabase TLS modes (dedicated server with TLS)', function () {
  this.timeout(60_000);
  let ds: DedicatedServer;
  let certs: ReturnType<typeof makeCertificates>;
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
});
