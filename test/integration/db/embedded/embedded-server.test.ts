import { expect } from 'chai';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EmbeddedServer } from '../../../../src/db/embedded/embedded-server.js';
import { freePort } from '../../../support/free-port.js';

describe('EmbeddedServer', () => {
  let root: string;
  let server: EmbeddedServer | undefined;

  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'pgdl-private-')); // 0700, as `mktemp -d` makes it
  });

  afterEach(async () => {
    await server?.stop();
    server = undefined;
    rmSync(root, { recursive: true, force: true });
  });

  it('starts with its data dir inside a private (0700) directory, reuses a running server, and stops only its own', async () => {
    expect(statSync(root).mode & 0o777).to.equal(0o700);
    const port = await freePort();
    const opts = { dataDir: path.join(root, 'pg', 'data'), port, username: 'postgres', password: 'pw' };
    server = new EmbeddedServer(opts);
    await server.start();
    expect(server.startedByUs).to.equal(true);

    const client = new pg.Client({
      host: '127.0.0.1',
      port,
      user: 'postgres',
      password: 'pw',
      database: 'postgres',
    });
    await client.connect();
    const { rows } = await client.query<{ v: string }>("select current_setting('server_version_num') as v");
    await client.end();
    expect(Number(rows[0]?.v)).to.be.at.least(180000);

    const second = new EmbeddedServer(opts);
    await second.start();
    expect(second.startedByUs).to.equal(false);
    await second.stop(); // not ours: leaves the server running
    const again = new pg.Client({
      host: '127.0.0.1',
      port,
      user: 'postgres',
      password: 'pw',
      database: 'postgres',
    });
    await again.connect();
    await again.end();
  });
});
