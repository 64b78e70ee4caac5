/**
 * The layer as a dependency, tried as a service team would: `npm pack` the package, install the
 * tarball into a copy of examples/orders-service (its own package.json, model, migration, seeds,
 * routes and tests), type-check it under `nodenext` and `bundler`, run the stock knex CLI on its
 * own files through `defineKnexfile`, and run its own test suite (startTestServer, withRollback,
 * the Fastify plugin).
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { queryOnce } from '../../support/query-once.js';
import { adminQuery, serverEnv } from '../../support/test-database.js';
import { testServer } from '../../support/root-hooks.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const EXAMPLE = path.join(ROOT, 'examples/orders-service');

/** The environment of a command run as a user would, without this run's database settings. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (
      /^(DB_|DATABASE_URL|PG_TEST_URL|TEST_DATABASE_URL|APP_ENV|NODE_ENV|NODE_OPTIONS|CONFIG_DIR)/.test(key)
    )
      delete env[key];
  }
  return { ...env, ...extra };
}

describe('the package in a service of its own (examples/orders-service)', function () {
  this.timeout(240_000);
  /** An empty database of the service's own (not a clone of this repository's template). */
  const blank = `pgdl_orders_${process.pid}`;
  const blankUrl = () => {
    const url = new URL(testServer().adminUrl);
    url.pathname = `/${blank}`;
    return url.toString();
  };
  let work: string;
  let service: string;
  let tarball: string;

  before(async () => {
    await adminQuery(`drop database if exists ${blank} with (force)`);
    await adminQuery(`create database ${blank}`);
    work = mkdtempSync(path.join(os.tmpdir(), 'pgdl-package-'));
    const { stdout } = await run('npm', ['pack', '--silent', '--pack-destination', work], {
      cwd: ROOT,
      env: userEnv(),
      maxBuffer: 1 << 24,
    });
    tarball = path.join(work, stdout.trim().split('\n').pop()!);
    service = path.join(work, 'orders-service');
    cpSync(EXAMPLE, service, { recursive: true, filter: (src) => !/node_modules|\.data/.test(src) });
    const manifest = path.join(service, 'package.json');
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { dependencies: Record<string, string> };
    pkg.dependencies['pg-data-layer'] = `file:${tarball}`;
    writeFileSync(manifest, JSON.stringify(pkg, null, 2));
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], {
      cwd: service,
      env: userEnv(),
      maxBuffer: 1 << 24,
    });
  });
  after(async () => {
    if (work) rmSync(work, { recursive: true, force: true });
    await adminQuery(`drop database if exists ${blank} with (force)`);
  });

  it('packs built ESM with types and nothing else: no tests, fixtures, sources or local data', async () => {
    const { stdout } = await run('tar', ['tzf', tarball]);
    const files = stdout.trim().split('\n');
    const outside = files.filter((f) => !/^package\/(dist\/|docs\/|README\.md$|package\.json$)/.test(f));
    expect(outside).to.deep.equal([]);
    expect(
      files.filter(
        (f) => /\.test\.|\/test\/|\.data\/|\.tsbuildinfo$|\.map$|\.ts$/.test(f) && !f.endsWith('.d.ts'),
      ),
    ).to.deep.equal([]);
    for (const entry of ['index', 'testing/index', 'fastify/index'])
      expect(files).to.include.members([`package/dist/${entry}.js`, `package/dist/${entry}.d.ts`]);
  });

  it('type-checks the service against the packed types under nodenext and bundler resolution', async () => {
    await run('npm', ['run', 'typecheck'], { cwd: service, env: userEnv(), maxBuffer: 1 << 24 });
  });

  it('runs the stock knex CLI on the service own migrations and seeds through defineKnexfile', async () => {
    const env = userEnv({ ...serverEnv(blank), NODE_OPTIONS: '--import tsx' });
    const knex = (...args: string[]) =>
      run('npx', ['knex', ...args], { cwd: service, env, maxBuffer: 1 << 24 }).then((r) => r.stdout);
    expect(await knex('migrate:latest')).to.match(/Batch 1 run: 1 migrations/);
    expect(await knex('seed:run', '--env', 'test')).to.match(/Ran 1 seed files/);
    const rows = await queryOnce<{ customer: string }>(blankUrl(), 'select customer from orders order by id');
    expect(rows.rows.map((r) => r.customer)).to.deep.equal(['ada', 'grace']);
    expect(await knex('migrate:rollback')).to.match(/Batch 1 rolled back: 1 migrations/);
    const left = await queryOnce(blankUrl(), `select to_regclass('orders') as t`);
    expect(left.rows[0]).to.deep.equal({ t: null });
  });

  it("runs the service's own tests on template databases with withRollback and the Fastify plugin", async () => {
    const { stdout } = await run('npm', ['test'], { cwd: service, env: userEnv(), maxBuffer: 1 << 24 });
    expect(stdout).to.match(/^test PostgreSQL: embedded \(template pgdl_template_\w+ ready in \d+ ms\)$/m);
    expect(stdout).to.match(/3 passing/);
    expect(stdout).not.to.match(/failing/);
  });
});
