import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

/** PEM files written by `makeCertificates`, by path. */
export interface TestCertificates {
  /** The CA that signed `cert`. */
  ca: string;
  /** Another, unrelated CA (a chain that must not verify). */
  otherCa: string;
  /** A server certificate for the name "localhost" only, signed by `ca`. */
  cert: string;
  /** Its private key. */
  key: string;
}

/** A CA, another CA, and a server certificate the first one signed for "localhost" only (openssl). */
export function makeCertificates(dir: string): TestCertificates {
  const ssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  };
  const selfSigned = (name: string, cn: string): void =>
    ssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
    );
  selfSigned('ca', 'pgdl test CA');
  selfSigned('other', 'other CA');
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
