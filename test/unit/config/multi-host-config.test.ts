import { expect } from 'chai';
import { loadConfig } from '../../../src/config/index.js';
import { catchConfigError } from '../../support/catch-config-error.js';
import { useTempConfigDir } from '../../support/temp-config-dir.js';

describe('loadConfig() multi-host and replica keys', () => {
  const tmp = useTempConfigDir();
  const load = (env: Record<string, string | undefined> = {}) =>
    loadConfig({ env, envFile: false, configDir: tmp().dir, profile: 'staging' });

  it("reads libpq's multi-host DATABASE_URL into hosts, host/port (the first) and targetSessionAttrs", () => {
    const { postgres } = load({
      DATABASE_URL: 'postgres://svc:pw@h1:5432,h2:5433,[::1]/orders?target_session_attrs=read-write',
    }).database;
    expect(postgres).to.deep.include({
      hosts: ['h1:5432', 'h2:5433', '[::1]:5432'],
      host: 'h1',
      port: 5432,
      name: 'orders',
      username: 'svc',
      targetSessionAttrs: 'read-write',
    });
    expect(postgres.password).to.equal('pw');
  });

  it('reads DB_HOSTS and DB_REPLICAS as comma-separated lists and fills host/port from the first host', () => {
    const { postgres } = load({
      DB_HOSTS: ' db1:5432 , db2:6432 ',
      DB_REPLICAS: 'r1:5432,r2:5432',
      DB_TARGET_SESSION_ATTRS: 'primary',
      DB_REPLICA_WAIT_TIMEOUT: '250ms',
    }).database;
    expect(postgres).to.deep.include({
      hosts: ['db1:5432', 'db2:6432'],
      host: 'db1',
      port: 5432,
      replicas: ['r1:5432', 'r2:5432'],
      targetSessionAttrs: 'primary',
      replicaWaitTimeout: 250,
    });
  });

  it('defaults to one host, any session, no replicas and a 1 s replica wait', () => {
    const { postgres } = load().database;
    expect(postgres).to.deep.include({
      hosts: [],
      targetSessionAttrs: 'any',
      replicas: [],
      replicaWaitTimeout: 1_000,
    });
  });

  it('reports a host without a port, an unknown target and a nameless host, without echoing the URL', () => {
    const err = catchConfigError(() =>
      load({ DB_REPLICAS: 'r1', DB_TARGET_SESSION_ATTRS: 'master', DB_HOSTS: 'db1:5432,:5433' }),
    );
    expect(err.issues.join('\n')).to.include('database.postgres.replicas.0: expected host:port');
    expect(err.issues.join('\n')).to.include('database.postgres.hosts.1: expected host:port');
    expect(err.issues.join('\n')).to.include(
      'database.postgres.targetSessionAttrs: must be one of any, read-write, read-only, primary, standby, prefer-standby',
    );
    const url = catchConfigError(() => load({ DATABASE_URL: 'postgres://u:hunter2@h1:5432,/db' }));
    expect(url.issues).to.deep.equal(['DATABASE_URL: every host of a multi-host URL needs a name']);
    expect(url.message).not.to.include('hunter2');
  });

  it('lets a production config name its servers by hosts alone', () => {
    const config = loadConfig({
      env: { DB_HOSTS: 'db1:5432,db2:5432', DB_PASSWORD: 'pw' },
      envFile: false,
      configDir: tmp().dir,
      profile: 'production',
    });
    expect(config.database.postgres.host).to.equal('db1');
  });
});
