/**
 * docker-compose.yml checked without a Docker engine (none here): the service is published on
 * loopback only, connects as the DML role that deploy/compose/create-roles.sh creates from
 * examples/least-privilege.sql (never as the image's superuser), the migration runs as the
 * schema owner, and the service's production configuration loads and has its cursor key.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { resolveCursorSecret } from '../../../src/config/cursor-secret.js';
import { loadConfig } from '../../../src/config/index.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

interface ComposeService {
  ports?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
}

/** Compose's `${NAME:-default}` interpolation with every variable unset: the defaults. */
function withDefaults(text: string): string {
  return text.replace(/\$\{\w+:-([^}]*)\}/g, '$1');
}

describe('docker-compose.yml', () => {
  const raw = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
  const compose = parse(withDefaults(raw)) as { services: Record<string, ComposeService> };
  const { postgres, migrate, app } = compose.services;
  const script = readFileSync(path.join(ROOT, 'deploy/compose/create-roles.sh'), 'utf8');
  /** `-v name=value` of the psql call in create-roles.sh, with `$VAR` read from the postgres service. */
  const psqlVar = (name: string): string => {
    const value = new RegExp(`-v ${name}=("?)([^\\s"]+)\\1`).exec(script)?.[2];
    if (value === undefined) expect.fail(`create-roles.sh sets no ${name}`);
    return value.startsWith('$') ? (postgres!.environment?.[value.slice(1)] ?? '') : value;
  };

  it('publishes the service on 127.0.0.1 only, and PostgreSQL not at all', () => {
    expect(app!.ports).to.have.length.above(0);
    for (const port of app!.ports ?? []) expect(port).to.match(/^127\.0\.0\.1:\d+:\d+$/);
    expect(postgres!.ports).to.equal(undefined);
  });

  it('creates the least-privilege roles on first start, with examples/least-privilege.sql as it is', () => {
    const mount = (source: string): string | undefined =>
      postgres!.volumes?.find((v) => v.startsWith(`${source}:`))?.split(':')[1];
    expect(mount('./deploy/compose/create-roles.sh')).to.match(/^\/docker-entrypoint-initdb\.d\//);
    const sql = mount('./examples/least-privilege.sql');
    expect(script).to.include(`-f ${sql}`);
    expect(script).to.include('ON_ERROR_STOP=1');
  });

  it('runs the service as the DML role and the migration as the schema owner, never as the superuser', () => {
    const superuser = postgres!.environment?.POSTGRES_USER;
    expect(app!.environment?.DB_USER).to.equal(psqlVar('app_role'));
    expect(app!.environment?.DB_PASSWORD).to.equal(psqlVar('app_password'));
    expect(migrate!.environment?.DB_USER).to.equal(psqlVar('owner_role'));
    expect(migrate!.environment?.DB_PASSWORD).to.equal(psqlVar('owner_password'));
    expect([app!.environment?.DB_USER, migrate!.environment?.DB_USER]).not.to.include(superuser);
    expect(app!.environment?.DB_PASSWORD).not.to.equal(postgres!.environment?.POSTGRES_PASSWORD);
  });

  it('gives the service a configuration the production profile loads, cursor key included', () => {
    const cfg = loadConfig({ env: { APP_ENV: 'production', ...app!.environment }, envFile: false });
    expect(cfg.database.postgres.username).to.equal('app');
    expect(() => resolveCursorSecret(cfg)).not.to.throw();
  });
});
