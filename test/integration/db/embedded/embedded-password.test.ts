import { expect } from 'chai';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { loadConfig } from '../../../../src/config/index.js';
import {
  embeddedPassword,
  embeddedPasswordFile,
  LEGACY_EMBEDDED_PASSWORD,
} from '../../../../src/db/embedded/embedded-password.js';
import { EmbeddedServer } from '../../../../src/db/embedded/embedded-server.js';
import {
  prepareMigrationTarget,
  type MigrationTarget,
} from '../../../../src/db/migrations/migration-target.js';
import { captureLogger } from '../../../support/capture-logger.js';
import { freePort } from '../../../support/free-port.js';

/** Whether `password` opens a session as `user` on the embedded server at `port`. */
async function logsIn(port: number, user: string, password: string): Promise<boolean> {
  const client = new pg.Client({ host: '127.0.0.1', port, user, password, database: 'postgres' });
  try {
    await client.connect();
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === '28P01') return false; // invalid_password
    throw err;
  } finally {
    await client.end().catch(() => {});
  }
}

describe('The embedded development server password', function () {
  this.timeout(60_000);
  let root: string;
  const targets: MigrationTarget[] = [];

  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'pgdl-embedded-pw-'));
    chmodSync(root, 0o755); // the embedded server runs as "postgres" when we are root
  });

  afterEach(async () => {
    for (const t of targets.splice(0)) await t.stop();
    rmSync(root, { recursive: true, force: true });
  });

  function devConfig(dataDir: string, port: number) {
    return loadConfig({
      env: {
        APP_ENV: 'development',
        DB_EMBEDDED_DATA_DIR: dataDir,
        DB_PORT: String(port),
        LOG_PRETTY: 'false',
      },
      profile: 'development',
    });
  }

  describe('embeddedPassword()', () => {
    it('generates a random password per data directory in a 0600 file beside it, and reuses it', () => {
      const a = embeddedPassword(path.join(root, 'a', 'postgres'));
      const b = embeddedPassword(path.join(root, 'b', 'postgres'));
      expect(a.created).to.equal(true);
      expect(a.file).to.equal(path.join(root, 'a', 'postgres.password'));
      expect(statSync(a.file).mode & 0o777).to.equal(0o600);
      expect(a.password).to.match(/^[A-Za-z0-9_-]{32}$/);
      expect(b.password).not.to.equal(a.password);
      const again = embeddedPassword(path.join(root, 'a', 'postgres'));
      expect(again).to.deep.equal({ ...a, created: false });
    });

    it('narrows a password file readable by others to 0600', () => {
      const first = embeddedPassword(path.join(root, 'postgres'));
      chmodSync(first.file, 0o644);
      expect(embeddedPassword(path.join(root, 'postgres')).password).to.equal(first.password);
      expect(statSync(first.file).mode & 0o777).to.equal(0o600);
    });
  });

  it('starts a new data directory with its random password (not "postgres"), shared by the next run, and never logs it', async () => {
    const port = await freePort();
    const dataDir = path.join(root, 'data');
    const cfg = devConfig(dataDir, port);
    const logs = captureLogger();
    targets.push(await prepareMigrationTarget(cfg, { logger: logs.logger }));
    const password = readFileSync(embeddedPasswordFile(dataDir), 'utf8').trim();
    expect(statSync(embeddedPasswordFile(dataDir)).mode & 0o777).to.equal(0o600);
    const user = cfg.database.postgres.username;
    expect(await logsIn(port, user, password)).to.equal(true);
    expect(await logsIn(port, user, LEGACY_EMBEDDED_PASSWORD)).to.equal(false);
    // A second command (the knex CLI beside `npm start`) reuses the running server and the password.
    const second = await prepareMigrationTarget(devConfig(dataDir, port));
    targets.push(second);
    expect(second.embedded?.startedByUs).to.equal(false);
    expect(second.config.database.postgres.password).to.equal(password);
    expect(logs.text()).not.to.include(password);
  });

  it('gives a data directory made with the old fixed password the random one at its first start', async () => {
    const port = await freePort();
    const dataDir = path.join(root, 'data');
    const cfg = devConfig(dataDir, port);
    const user = cfg.database.postgres.username;
    const old = new EmbeddedServer({ dataDir, port, username: user, password: LEGACY_EMBEDDED_PASSWORD });
    await old.start();
    await old.stop();
    expect(existsSync(embeddedPasswordFile(dataDir))).to.equal(false);

    const logs = captureLogger();
    targets.push(await prepareMigrationTarget(cfg, { logger: logs.logger }));
    const password = readFileSync(embeddedPasswordFile(dataDir), 'utf8').trim();
    expect(await logsIn(port, user, password)).to.equal(true);
    expect(await logsIn(port, user, LEGACY_EMBEDDED_PASSWORD)).to.equal(false);
    expect(logs.lines.map((l) => l.msg)).to.include(
      'the embedded server had the fixed development password; it now has a random one, kept in passwordFile',
    );
    expect(logs.text()).not.to.include(password);
  });
});
