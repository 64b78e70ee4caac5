import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { EmbeddedServer } from '../../../src/db/embedded/embedded-server.js';
import { freePort } from '../../support/free-port.js';
import { queryOnce } from '../../support/query-once.js';
import { testServer } from '../../support/root-hooks.js';
import { adminQuery, serverEnv } from '../../support/test-database.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const KNEX_CLI = path.join(ROOT, 'node_modules/knex/bin/cli.js');

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the stock knex CLI as `NODE_OPTIONS='--import tsx' knex <args>` does, from the
 * project root, with only the given variables (nothing inherited from this process's DB_*).
 */
async function knexCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [KNEX_CLI, ...args], {
      cwd: ROOT,
      timeout: 60_000,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: os.tmpdir(),
        NODE_OPTIONS: '--import tsx',
        NO_COLOR: '1',
        ...env,
      },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function expectOk(result: CliResult): CliResult {
  expect(result.code, `${result.stdout}\n${result.stderr}`).to.equal(0);
  return result;
}

async function usersTableExists(url: string): Promise<boolean> {
  const { rows } = await queryOnce<{ t: string | null }>(
    url,
    "select to_regclass('public.users')::text as t",
  );
  return rows[0]?.t === 'users';
}

/** The CLI round trip docs/migrations.md promises, against whatever `env` points at. */
async function roundTrip(
  env: Record<string, string>,
  url: string,
  afterEach: () => void = () => {},
): Promise<void> {
  expect(expectOk(await knexCli(['migrate:latest'], env)).stdout).to.contain('Batch 1 run: 1 migrations');
  afterEach();
  expect(await usersTableExists(url)).to.equal(true);
  const status = expectOk(await knexCli(['migrate:status'], env)).stdout;
  afterEach();
  expect(status)
    .to.contain('Found 1 Completed Migration file/files.')
    .and.contain('No Pending Migration files Found.');
  expect(expectOk(await knexCli(['migrate:rollback', '--all'], env)).stdout).to.contain(
    'rolled back: 1 migrations',
  );
  afterEach();
  expect(await usersTableExists(url)).to.equal(false);
  expect(expectOk(await knexCli(['migrate:latest'], env)).stdout).to.contain('Batch 1 run: 1 migrations');
  afterEach();
  expect(await usersTableExists(url)).to.equal(true);
}

describe('knex migrate CLI (knexfile.ts)', function () {
  this.timeout(120_000);

  describe('against a given server', () => {
    const name = `pgdl_cli_${process.pid}`;
    let url: URL;
    let env: Record<string, string>;

    before(async () => {
      await adminQuery(`drop database if exists ${name} with (force)`);
      await adminQuery(`create database ${name}`);
      url = new URL(testServer().adminUrl);
      url.pathname = `/${name}`;
      env = { APP_ENV: 'test', ...serverEnv(name) };
    });

    after(async () => {
      await adminQuery(`drop database if exists ${name} with (force)`);
    });

    it('runs migrate:latest -> migrate:status (nothing pending) -> migrate:rollback --all -> migrate:latest', async () => {
      await roundTrip(env, url.toString());
    });

    it('takes the server from DATABASE_URL as well', async () => {
      const status = expectOk(
        await knexCli(['migrate:status'], { APP_ENV: 'test', DATABASE_URL: url.toString() }),
      );
      expect(status.stdout).to.contain('No Pending Migration files Found.');
    });

    it('never prints the password, neither on success nor when the server refuses it', async () => {
      const result = expectOk(await knexCli(['migrate:status'], env));
      expect(result.stdout).to.contain('No Pending Migration files Found.');
      expect(result.stdout + result.stderr).not.to.contain(env.DB_PASSWORD);
      const wrong = 'wrong-Secret-4711';
      const refused = await knexCli(['migrate:status'], { ...env, DB_PASSWORD: wrong });
      expect(refused.code, refused.stdout).not.to.equal(0);
      expect(refused.stderr).to.contain('password authentication failed');
      expect(refused.stdout + refused.stderr).not.to.contain(wrong);
    });

    it('refuses while a stale migration lock is held, and runs again after migrate:unlock', async () => {
      expectOk(await knexCli(['migrate:rollback', '--all'], env));
      await queryOnce(url.toString(), 'update knex_migrations_lock set is_locked = 1');
      const locked = await knexCli(['migrate:latest'], env);
      expect(locked.code).to.equal(1);
      expect(locked.stderr).to.contain('Migration table is already locked');
      expectOk(await knexCli(['migrate:unlock'], env));
      expect(expectOk(await knexCli(['migrate:latest'], env)).stdout).to.contain('Batch 1 run');
    });

    it('refuses to seed the production profile unless SEED_FORCE=1', async () => {
      // The test server has no certificate: production's verify-full must be turned off explicitly.
      const production = { ...env, APP_ENV: 'production', DB_SSLMODE: 'disable' };
      const refused = await knexCli(['seed:run'], production);
      expect(refused.code).to.equal(1);
      expect(refused.stderr).to.contain('Refusing to seed the "production" profile');
      const viaFlag = await knexCli(['seed:run', '--env', 'production'], { ...env, DB_SSLMODE: 'disable' });
      expect(viaFlag.stderr).to.contain('Refusing to seed the "production" profile');
      expectOk(await knexCli(['seed:run'], { ...production, SEED_FORCE: '1' }));
      const count = await queryOnce<{ n: string }>(url.toString(), 'select count(*) as n from users');
      expect(count.rows[0]?.n).to.equal('1000');
    });
  });

  describe('against the embedded default (no DB_HOST)', () => {
    let root: string;
    let env: Record<string, string>;
    let url: string;
    let dataDir: string;

    before(async () => {
      root = mkdtempSync(path.join(os.tmpdir(), 'pgdl-cli-'));
      chmodSync(root, 0o755); // the server runs as the "postgres" OS user when we are root
      dataDir = path.join(root, 'data');
      const port = await freePort();
      env = {
        APP_ENV: 'development',
        DB_HOST: '',
        DB_PORT: String(port),
        DB_NAME: 'cli_embedded',
        DB_USER: 'postgres',
        DB_PASSWORD: 'embedded-cli-secret',
        DB_EMBEDDED_DATA_DIR: dataDir,
      };
      url = `postgres://postgres:embedded-cli-secret@127.0.0.1:${port}/cli_embedded`;
    });

    after(() => {
      rmSync(root, { recursive: true, force: true });
    });

    const stopped = () =>
      expect(existsSync(path.join(dataDir, 'postmaster.pid')), 'server left running').to.equal(false);

    it('initialises, starts and stops the server around every command, and the round trip holds', async () => {
      // Between commands the server is down again, so the checks in between start their own.
      const server = new EmbeddedServer({
        dataDir,
        port: Number(env.DB_PORT),
        username: 'postgres',
        password: 'embedded-cli-secret',
      });
      const checkAndStop = async (check: () => Promise<void>) => {
        await server.start();
        try {
          await check();
        } finally {
          await server.stop();
        }
      };
      expect(expectOk(await knexCli(['migrate:latest'], env)).stdout).to.contain('Batch 1 run: 1 migrations');
      stopped();
      await checkAndStop(async () => {
        expect(await usersTableExists(url)).to.equal(true);
      });
      expect(expectOk(await knexCli(['migrate:status'], env)).stdout).to.contain(
        'No Pending Migration files Found.',
      );
      stopped();
      expect(expectOk(await knexCli(['migrate:rollback', '--all'], env)).stdout).to.contain('rolled back: 1');
      stopped();
      await checkAndStop(async () => {
        expect(await usersTableExists(url)).to.equal(false);
      });
      expect(expectOk(await knexCli(['migrate:latest'], env)).stdout).to.contain('Batch 1 run: 1 migrations');
      stopped();
    });

    it('uses a server that is already running and leaves it running', async () => {
      const server = new EmbeddedServer({
        dataDir,
        port: Number(env.DB_PORT),
        username: 'postgres',
        password: 'embedded-cli-secret',
      });
      await server.start();
      const running = () =>
        expect(existsSync(path.join(dataDir, 'postmaster.pid')), 'server stopped').to.equal(true);
      try {
        expectOk(await knexCli(['migrate:rollback', '--all'], env));
        running();
        await roundTrip(env, url, running);
      } finally {
        await server.stop();
      }
      stopped();
    });
  });
});
